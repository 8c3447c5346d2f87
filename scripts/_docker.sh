# Sourced by scripts/compose-e2e and scripts/swarm-e2e: what they share about images.
#
# choose_base_image: sets and exports BASE_IMAGE (unless given): python:3.11-slim when it
# is here or can be pulled, else the local ailedger-base:local that scripts/docker-base
# debootstraps (no registry reachable).
choose_base_image() {
    if [ -n "${BASE_IMAGE:-}" ]; then
        export BASE_IMAGE
        return
    fi
    if docker image inspect python:3.11-slim >/dev/null 2>&1 \
        || timeout 300 docker pull -q python:3.11-slim >/dev/null 2>&1; then
        BASE_IMAGE=python:3.11-slim
    else
        printf '\n==> %s\n' "python:3.11-slim cannot be pulled: using the local base image"
        "$ROOT/scripts/docker-base"
        BASE_IMAGE=ailedger-base:local
    fi
    export BASE_IMAGE
}

# remove_built_image IMAGE: the image a run built, and the build stages the classic
# builder keeps untagged (the Dockerfile labels them org.ailedger.stage=build).
remove_built_image() {
    docker image rm "$1" >/dev/null 2>&1 || true
    docker image prune -f --filter label=org.ailedger.stage=build >/dev/null 2>&1 || true
}
