// The node's public REST API, always through URLs relative to the page: the explorer
// calls its own node and nothing else.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || "http-error";
  }
}

export async function get(path) {
  let response;
  try {
    response = await fetch(path, { headers: { accept: "application/json" } });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the node did not answer (${err.message})`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && body.error ? body.error : {};
    throw new ApiError(response.status, error.code, error.message);
  }
  return body;
}

/** The absolute URL of an API path, for people to copy (curl, links). */
export function absolute(path) {
  return new URL(path, document.baseURI).href;
}

export function curl(path) {
  return `curl -s '${absolute(path)}'`;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
