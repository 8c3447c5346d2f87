"""The bounded state behind peer identity: inbound sessions, hellos waiting for their
finish, and discouraged node ids. Pure and clock-free (``now`` is passed in), owned by
the protocol core (``node.p2p.protocol``), each bounded so that no flood of hellos or
identities grows memory: ``Sessions`` holds at most ``limit`` sessions and
``MAX_PENDING`` answered hellos, ``Bans`` at most ``MAX_BANNED`` node ids."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from node.p2p.messages import Best, Hello

__all__ = ["MAX_BANNED", "MAX_PENDING", "PENDING_MS", "Bans", "Session", "Sessions"]

PENDING_MS = 30_000
"""How long an answered hello waits for its finish."""
MAX_PENDING = 1024
"""Answered hellos waiting for a finish, at most (a flood of hellos costs bounded memory)."""
MAX_BANNED = 10_000


@dataclass
class Session:
    """A peer that proved its node_id to us, and the token it names itself with."""

    node_id: str
    token: str
    listen_url: str
    best: Best
    last_used: int


@dataclass
class _Pending:
    hello: Hello
    expires: int


class Sessions:
    """Sessions by token and by node id, and the hellos answered but not yet finished."""

    def __init__(self, limit: int, rng: random.Random) -> None:
        self.limit = limit
        self._rng = rng
        self._by_token: dict[str, Session] = {}
        self._token_of: dict[str, str] = {}
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_token)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._token_of

    def pending(self) -> int:
        return len(self._pending)

    def of(self, node_id: str) -> Session | None:
        token = self._token_of.get(node_id)
        return self._by_token.get(token) if token else None

    def find(self, token: str | None) -> Session | None:
        return self._by_token.get(token or "")

    def expect(self, challenge: str, hello: Hello, now: int) -> None:
        """``hello`` was answered with ``challenge``: its finish may come until expiry."""
        self.expire(now)
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        self._pending[challenge] = _Pending(hello, now + PENDING_MS)

    def awaited(self, challenge: str, node_id: str, now: int) -> Hello | None:
        """The hello ``node_id`` sent that ``challenge`` answered, if it is still awaited."""
        pending = self._pending.get(challenge)
        if pending is None or pending.expires < now or pending.hello.node_id != node_id:
            return None
        return pending.hello

    def spend(self, challenge: str) -> None:
        """A challenge opens one session, once."""
        self._pending.pop(challenge, None)

    def open(self, hello: Hello, now: int, keep: Callable[[str], bool]) -> str:
        """A session for the node of ``hello``; a node that says hello again (to refresh
        its tip) keeps its token, so its requests in flight stay valid. When full, the
        least recently used session whose node ``keep`` does not protect makes room."""
        session = self.of(hello.node_id)
        if session is not None:
            session.listen_url, session.best, session.last_used = hello.listen_url, hello.best, now
            return session.token
        if len(self._by_token) >= self.limit:
            idle = [s for s in self._by_token.values() if not keep(s.node_id)]
            victim = min(idle or self._by_token.values(), key=lambda s: s.last_used)
            self.drop(victim.node_id)
        token = self._rng.randbytes(24).hex()
        self._by_token[token] = Session(hello.node_id, token, hello.listen_url, hello.best, now)
        self._token_of[hello.node_id] = token
        return token

    def drop(self, node_id: str) -> None:
        token = self._token_of.pop(node_id, None)
        if token is not None:
            self._by_token.pop(token, None)

    def clear(self) -> None:
        self._by_token.clear()
        self._token_of.clear()
        self._pending.clear()

    def expire(self, now: int) -> None:
        while self._pending:
            challenge, pending = next(iter(self._pending.items()))
            if pending.expires >= now:
                break
            del self._pending[challenge]


@dataclass
class _Ban:
    until: int
    reason: str


class Bans:
    """Discouraged node ids and why, until when; the oldest forgotten past ``MAX_BANNED``."""

    def __init__(self) -> None:
        self._bans: OrderedDict[str, _Ban] = OrderedDict()

    def ban(self, node_id: str, reason: str, until: int) -> None:
        self._bans.pop(node_id, None)
        self._bans[node_id] = _Ban(until, reason)
        while len(self._bans) > MAX_BANNED:
            self._bans.popitem(last=False)

    def lift(self, node_id: str) -> None:
        self._bans.pop(node_id, None)

    def reason(self, node_id: str, now: int) -> str | None:
        """Why ``node_id`` is refused now, or None."""
        ban = self._bans.get(node_id)
        return ban.reason if ban is not None and ban.until > now else None
