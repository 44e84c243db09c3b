"""A fake Discord (REST and gateway) on 127.0.0.1 that the real discord.py client talks to."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

import discord
import yarl
from aiohttp import web

JSON = dict[str, Any]
ClientT = TypeVar("ClientT", bound=discord.Client)
Upload = tuple[int, str, bytes, str | None]  # (files[n] index, filename, bytes, content type)

API = "/api/v10"
GATEWAY_PATH = "/gateway"

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EVERYONE_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES
ALL_PERMISSIONS = (1 << 53) - 1

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

DEFAULT_GUILD_ID = 1_100_000_000_000_000_001
DEFAULT_CHANNEL_ID = 1_100_000_000_000_000_002
DEFAULT_USER_ID = 1_100_000_000_000_000_003
BOT_USER_ID = 1_100_000_000_000_000_004
TOKEN = "fake-bot-token"

# Option types whose value is a snowflake that Discord also sends in data.resolved.
_USER, _CHANNEL, _ROLE = 6, 7, 8
_SUBCOMMAND, _SUBCOMMAND_GROUP = 1, 2


class InteractionType(IntEnum):
    """Kinds of INTERACTION_CREATE the fake can inject."""

    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType(IntEnum):
    """Interaction callback (response) types."""

    PONG = 1
    CHANNEL_MESSAGE = 4
    DEFERRED_CHANNEL_MESSAGE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9


class FakeDiscordError(Exception):
    """Raised when a test asks the fake for something Discord would not allow."""


@dataclass(frozen=True)
class FakeChannel:
    """A guild channel; type 0 is a text channel."""

    id: int
    name: str
    type: int = 0


@dataclass(frozen=True)
class FakeRole:
    """A guild role with its permission bits."""

    id: int
    name: str
    permissions: int = 0


@dataclass
class Attachment:
    """A file the bot uploaded, with its bytes."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class SentMessage:
    """A message the bot created (channel post, interaction reply or follow-up), as edited since."""

    id: int
    channel_id: int
    author_id: int
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    edits: int = 0
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred reply's "thinking..." placeholder."""
        return bool(self.flags & LOADING)

    def custom_ids(self) -> list[str]:
        """Custom ids of all components, in order, for finding a button to click."""
        found: list[str] = []

        def walk(components: list[JSON]) -> None:
            for component in components:
                if "custom_id" in component:
                    found.append(component["custom_id"])
                walk(component.get("components", []))

        walk(self.components)
        return found

    def apply(self, body: JSON, files: list[Attachment]) -> None:
        """Apply a create or edit body the way Discord does: absent keys stay unchanged."""
        if "content" in body:
            self.content = body["content"] or ""
        if "embeds" in body:
            self.embeds = body["embeds"] or []
        if "components" in body:
            self.components = body["components"] or []
        if "flags" in body and body["flags"] is not None:
            self.flags = body["flags"]
        if "attachments" in body:
            # Kept attachments are listed by id; new files are listed by their upload index.
            keep = {str(a["id"]) for a in body["attachments"] or []}
            self.attachments = [a for a in self.attachments if str(a.id) in keep]
        self.attachments.extend(files)

    def to_payload(self, server: FakeDiscord) -> JSON:
        return {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "guild_id": str(server.guild_id),
            "type": 0,
            "author": server.user_payload(self.author_id),
            "content": self.content,
            "embeds": self.embeds,
            "components": self.components,
            "attachments": [server.attachment_payload(a) for a in self.attachments],
            "flags": self.flags,
            "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": "2025-01-01T00:00:01+00:00" if self.edits else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
        }


@dataclass
class Callback:
    """One interaction callback (the bot's initial response)."""

    type: int
    data: JSON
    files: list[Attachment]


@dataclass(eq=False)
class InteractionRecord:
    """An injected interaction and everything the bot answered to it."""

    id: int
    token: str
    type: InteractionType
    payload: JSON
    server: FakeDiscord = field(repr=False)
    callbacks: list[Callback] = field(default_factory=list)
    original: SentMessage | None = None
    followups: list[SentMessage] = field(default_factory=list)
    component_message: SentMessage | None = None  # the message a click or select came from
    injected_at: float = 0.0  # time.monotonic() when the INTERACTION_CREATE was sent
    responded_at: float | None = None  # time.monotonic() of the first callback, if any

    @property
    def response_time(self) -> float | None:
        """Seconds from the dispatch to the initial callback (None while unanswered)."""
        return None if self.responded_at is None else self.responded_at - self.injected_at

    @property
    def callback(self) -> Callback | None:
        return self.callbacks[0] if self.callbacks else None

    @property
    def choices(self) -> list[JSON]:
        """Autocomplete choices the bot returned (callback type 8)."""
        callback = self.callback
        if callback is None or callback.type != CallbackType.AUTOCOMPLETE_RESULT:
            raise FakeDiscordError(f"interaction {self.id} has no autocomplete result")
        return list(callback.data.get("choices", []))

    @property
    def replies(self) -> list[SentMessage]:
        """What the user sees: the original response (unless still loading), then follow-ups."""
        shown = [m for m in [self.original] if m is not None and not m.loading and not m.deleted]
        return shown + [m for m in self.followups if not m.deleted]

    async def wait_response(self, within: float | None = None) -> Callback:
        """Wait for the initial callback (reply, defer, modal or autocomplete result)."""
        await self.server.wait_until(lambda: bool(self.callbacks), within)
        assert self.callback is not None
        return self.callback

    async def wait_reply(self, within: float | None = None) -> SentMessage:
        """Wait for the first visible reply, whether sent directly, by edit or as a follow-up."""
        await self.server.wait_until(lambda: bool(self.replies), within)
        return self.replies[0]

    async def wait_followups(
        self, count: int = 1, within: float | None = None
    ) -> list[SentMessage]:
        await self.server.wait_until(lambda: len(self.followups) >= count, within)
        return self.followups


@dataclass(frozen=True)
class RequestLog:
    """One REST request the fake received; route is the path template, e.g. /channels/{id}."""

    method: str
    route: str
    path: str
    status: int


@dataclass(frozen=True)
class Heartbeat:
    """One gateway heartbeat (op 1): when it arrived and when the fake sent its ACK (op 11)."""

    connection: int
    received: float  # time.monotonic()
    acked: float


@dataclass
class _RateLimit:
    method: str
    route: str
    remaining: int
    retry_after: float
    is_global: bool


def _json(
    data: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    # discord.py parses a body only when Content-Type is exactly "application/json"; aiohttp's
    # json_response would append "; charset=utf-8" and the client would then see a string.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status=status)


async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """The decoded JSON body (an object, or a list for bulk overwrites) and the uploads."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        raw = form.get("payload_json")
        body = json.loads(raw) if isinstance(raw, str) else {}
        files: list[Upload] = []
        for name, value in form.items():
            if isinstance(value, web.FileField) and name.startswith("files["):
                index = int(name.removeprefix("files[").removesuffix("]"))
                files.append((index, value.filename, value.file.read(), value.content_type))
        return body, sorted(files)
    if not request.can_read_body:
        return {}, []
    text = await request.text()
    return (json.loads(text) if text else {}), []


class FakeDiscord:
    """A loopback Discord for one bot: records what it sends, injects what users do."""

    def __init__(
        self,
        *,
        guild_id: int = DEFAULT_GUILD_ID,
        guild_name: str = "Test Guild",
        channels: Iterable[FakeChannel] = (FakeChannel(DEFAULT_CHANNEL_ID, "general"),),
        roles: Iterable[FakeRole] = (),
        everyone_permissions: int = EVERYONE_PERMISSIONS,
        bot_user_id: int = BOT_USER_ID,
        bot_name: str = "computewatch",
        heartbeat_interval: float = 41.25,
        attachment_size_limit: int = 10 * 1024 * 1024,
        wait_timeout: float = 2.0,
        interaction_deadline: float | None = None,
    ) -> None:
        self.guild_id = guild_id
        self.guild_name = guild_name
        self.channels = {c.id: c for c in channels}
        everyone = FakeRole(guild_id, "@everyone", everyone_permissions)
        self.roles = {r.id: r for r in (everyone, *roles)}
        self.bot_user_id = bot_user_id
        self.bot_name = bot_name
        self.application_id = bot_user_id
        self.heartbeat_interval = heartbeat_interval
        self.attachment_size_limit = attachment_size_limit
        self.wait_timeout = wait_timeout
        # Like Discord: an initial response later than this many seconds after the interaction
        # is refused with 404 "Unknown interaction" (10062). None: no deadline.
        self.interaction_deadline = interaction_deadline

        # What the bot did, for assertions.
        self.requests: list[RequestLog] = []
        self.unhandled: list[RequestLog] = []
        self.rate_limited: list[RequestLog] = []
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = defaultdict(list)
        self.messages: dict[int, list[SentMessage]] = defaultdict(list)
        self.interactions: dict[str, InteractionRecord] = {}
        self.identifies: list[JSON] = []
        self.resumes: list[JSON] = []
        self.heartbeats: list[tuple[int, float]] = []  # (connection number, monotonic time)
        self.heartbeat_log: list[Heartbeat] = []
        self.expired: list[InteractionRecord] = []  # callbacks refused for a missed deadline
        self._connected_at: dict[int, float] = {}  # connection number -> monotonic time
        self.connections = 0

        self._ids = itertools.count(1_200_000_000_000_000_000)
        self._message_index: dict[int, SentMessage] = {}
        self._rate_limits: list[_RateLimit] = []
        self._changed = asyncio.Condition()
        self._ws: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._ready = asyncio.Event()
        self._session_id: str | None = None
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self._saved_urls: tuple[str, yarl.URL, str] | None = None
        self.port = 0

    # ---- lifecycle ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{GATEWAY_PATH}"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self._add_routes(app)
        # A short shutdown timeout: the bot is closed before stop(), so nothing should linger.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        # Bind first so the ephemeral port is known before anything connects.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        self.unpatch_discord()
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def patch_discord(self) -> None:
        """Point discord.py (process-global class attributes) at this server."""
        if self._saved_urls is None:
            self._saved_urls = (
                discord.http.Route.BASE,
                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
                discord.asset.Asset.BASE,
            )
        discord.http.Route.BASE = self.base_url + API
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        discord.asset.Asset.BASE = self.base_url + "/cdn"

    def unpatch_discord(self) -> None:
        if self._saved_urls is not None:
            route_base, gateway, asset_base = self._saved_urls
            discord.http.Route.BASE = route_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
            discord.asset.Asset.BASE = asset_base
            self._saved_urls = None

    def forget(self, record: InteractionRecord) -> None:
        """Drop a finished interaction and its messages, so that a long run (load, soak)
        measures the bot's memory rather than this fake's records."""
        self.interactions.pop(record.token, None)
        for message in [record.original, *record.followups]:
            if message is not None:
                self._message_index.pop(message.id, None)

    def forget_channel(self, channel_id: int) -> None:
        """Drop the bot's posts in a channel (for long runs, like forget())."""
        for message in self.messages.pop(channel_id, []):
            self._message_index.pop(message.id, None)

    def channel_id(self, name: str) -> int:
        for channel in self.channels.values():
            if channel.name == name:
                return channel.id
        raise FakeDiscordError(f"no channel named {name!r}")

    def role_id(self, name: str) -> int:
        for role in self.roles.values():
            if role.name == name:
                return role.id
        raise FakeDiscordError(f"no role named {name!r}")

    # ---- waiting ------------------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool], within: float | None = None) -> None:
        """Wait until predicate() holds; it is rechecked whenever the fake records something."""
        # `within` is in seconds, as for every wait here, and defaults to wait_timeout.
        async with asyncio.timeout(self.wait_timeout if within is None else within):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_message(
        self, channel_id: int, *, count: int = 1, within: float | None = None
    ) -> SentMessage:
        """Wait until channel_id holds `count` posts and return the count-th (1-based)."""
        # Counting rather than "the next one", so a post that lands before the call is not missed.
        await self.wait_until(lambda: len(self.messages[channel_id]) >= count, within)
        return self.messages[channel_id][count - 1]

    async def wait_until_ready(self, within: float | None = None) -> None:
        """Wait until the bot has identified or resumed and can receive dispatches."""
        async with asyncio.timeout(self.wait_timeout if within is None else within):
            await self._ready.wait()

    # ---- rate limits --------------------------------------------------------------------

    def rate_limit(
        self,
        method: str,
        route: str,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> None:
        """Answer the next `times` requests to `route` with a 429 that discord.py retries."""
        # route is the template after /api/v10, e.g. "/channels/{channel_id}/messages".
        self._rate_limits.append(_RateLimit(method.upper(), route, times, retry_after, is_global))

    def _take_rate_limit(self, method: str, route: str) -> _RateLimit | None:
        for limit in self._rate_limits:
            if limit.method == method and limit.route == route and limit.remaining > 0:
                limit.remaining -= 1
                return limit
        return None

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical.removeprefix(API) if resource is not None else request.path
        limit = self._take_rate_limit(request.method, route)
        if limit is not None:
            log = RequestLog(request.method, route, request.path, 429)
            self.requests.append(log)
            self.rate_limited.append(log)
            body = {
                "message": "You are being rate limited.",
                "retry_after": limit.retry_after,
                "global": limit.is_global,
            }
            # Without a Via header discord.py takes a 429 for a Cloudflare ban and raises.
            return _json(body, status=429, headers={"Via": "1.1 google"})
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            log = RequestLog(request.method, route, request.path, 404)
            self.requests.append(log)
            self.unhandled.append(log)
            return _error(404, 0, f"fake Discord has no route {request.method} {request.path}")
        self.requests.append(RequestLog(request.method, route, request.path, response.status))
        return response

    # ---- payloads -----------------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def user_payload(self, user_id: int) -> JSON:
        is_bot = user_id == self.bot_user_id
        name = self.bot_name if is_bot else f"user{user_id % 10_000}"
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": is_bot,
            "public_flags": 0,
        }

    def role_payload(self, role: FakeRole) -> JSON:
        return {
            "id": str(role.id),
            "name": role.name,
            "permissions": str(role.permissions),
            "position": 0 if role.id == self.guild_id else 1,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": True,
            "flags": 0,
        }

    def channel_payload(self, channel: FakeChannel) -> JSON:
        return {
            "id": str(channel.id),
            "name": channel.name,
            "type": channel.type,
            "guild_id": str(self.guild_id),
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }

    def attachment_payload(self, attachment: Attachment) -> JSON:
        url = f"{self.base_url}/cdn/attachments/{attachment.id}/{attachment.filename}"
        return {
            "id": str(attachment.id),
            "filename": attachment.filename,
            "size": len(attachment.data),
            "url": url,
            "proxy_url": url,
            "content_type": attachment.content_type,
        }

    def permissions_for(self, roles: Iterable[int]) -> int:
        """Guild-level permissions of a member with these roles (plus @everyone)."""
        bits = self.roles[self.guild_id].permissions
        for role_id in roles:
            bits |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if bits & ADMINISTRATOR else bits

    def member_payload(
        self, user_id: int, roles: Iterable[int] = (), permissions: int | None = None
    ) -> JSON:
        roles = list(roles)
        unknown = [r for r in roles if r not in self.roles]
        if unknown:
            raise FakeDiscordError(f"roles {unknown} are not in the fake guild")
        perms = self.permissions_for(roles) if permissions is None else permissions
        return {
            "user": self.user_payload(user_id),
            "roles": [str(r) for r in roles],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "permissions": str(perms),
        }

    def guild_payload(self) -> JSON:
        bot_member = self.member_payload(self.bot_user_id)
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "owner_id": "1",
            "unavailable": False,
            "large": False,
            "features": [],
            "roles": [self.role_payload(r) for r in self.roles.values()],
            "channels": [self.channel_payload(c) for c in self.channels.values()],
            # member_count == len(members) marks the guild as chunked, so no op 8 is needed.
            "members": [bot_member],
            "member_count": 1,
            "presences": [],
            "voice_states": [],
            "threads": [],
            "emojis": [],
            "stickers": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "mfa_level": 0,
            "verification_level": 0,
            "explicit_content_filter": 0,
            "default_message_notifications": 0,
            "system_channel_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "nsfw_level": 0,
        }

    def _new_message(
        self, channel_id: int, body: JSON, attachments: list[Attachment]
    ) -> SentMessage:
        message = SentMessage(id=self.next_id(), channel_id=channel_id, author_id=self.bot_user_id)
        message.apply(body, attachments)
        self._message_index[message.id] = message
        return message

    def _attachments(self, files: list[Upload]) -> list[Attachment]:
        return [Attachment(self.next_id(), name, data, ctype) for _, name, data, ctype in files]

    # ---- REST ---------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get(API + "/users/@me", self._get_me)
        r.add_get(API + "/oauth2/applications/@me", self._get_application)
        r.add_get(API + "/gateway", self._get_gateway)
        r.add_get(API + "/gateway/bot", self._get_gateway)
        r.add_get(API + "/applications/{app_id}/commands", self._get_commands)
        r.add_put(API + "/applications/{app_id}/commands", self._put_commands)
        r.add_get(API + "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands)
        r.add_put(API + "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands)
        r.add_get(API + "/channels/{channel_id}", self._get_channel)
        r.add_post(API + "/channels/{channel_id}/typing", self._typing)
        r.add_post(API + "/channels/{channel_id}/messages", self._post_message)
        r.add_get(API + "/channels/{channel_id}/messages/{message_id}", self._get_message)
        r.add_patch(API + "/channels/{channel_id}/messages/{message_id}", self._patch_message)
        r.add_delete(API + "/channels/{channel_id}/messages/{message_id}", self._delete_message)
        r.add_post(API + "/interactions/{interaction_id}/{token}/callback", self._callback)
        r.add_post(API + "/webhooks/{app_id}/{token}", self._post_followup)
        hook_message = API + "/webhooks/{app_id}/{token}/messages/{message_id}"
        r.add_get(hook_message, self._get_hook_message)
        r.add_patch(hook_message, self._patch_hook_message)
        r.add_delete(hook_message, self._delete_hook_message)
        r.add_get(GATEWAY_PATH, self._gateway)

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json(self.user_payload(self.bot_user_id) | {"verified": True, "mfa_enabled": False})

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot_name,
                "icon": None,
                "description": "",
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.user_payload(1),
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
                "summary": "",
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    def _command_list(self, request: web.Request) -> list[JSON]:
        if "guild_id" in request.match_info:
            return self.guild_commands[int(request.match_info["guild_id"])]
        return self.global_commands

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self._command_list(request))

    async def _put_commands(self, request: web.Request) -> web.Response:
        body, _ = await _read_body(request)
        commands: list[JSON] = body  # a bulk overwrite sends a list, not an object
        stored = [self._stored_command(c, request.match_info.get("guild_id")) for c in commands]
        target = self._command_list(request)
        target[:] = stored  # a bulk overwrite replaces the whole set, as on Discord
        await self._notify()
        return _json(stored)

    def _stored_command(self, command: JSON, guild_id: str | None) -> JSON:
        """The command as Discord returns it: with ids and version, and defaults filled in."""
        stored: JSON = {"type": 1, "description": "", "options": [], "nsfw": False}
        stored |= command
        stored |= {
            "id": str(self.next_id()),
            "application_id": str(self.application_id),
            "version": str(self.next_id()),
        }
        if guild_id is not None:
            stored["guild_id"] = guild_id
        return stored

    def _channel(self, request: web.Request) -> FakeChannel | None:
        return self.channels.get(int(request.match_info["channel_id"]))

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        return _json(self.channel_payload(channel))

    async def _typing(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _post_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _error(404, 10003, "Unknown Channel")
        body, files = await _read_body(request)
        message = self._new_message(channel.id, body, self._attachments(files))
        self.messages[channel.id].append(message)
        await self._notify()
        return _json(message.to_payload(self))

    def _channel_message(self, request: web.Request) -> SentMessage | None:
        message = self._message_index.get(int(request.match_info["message_id"]))
        channel_id = int(request.match_info["channel_id"])
        if message is None or message.deleted or message.channel_id != channel_id:
            return None
        return message

    async def _get_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        return _json(message.to_payload(self))

    async def _patch_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        body, files = await _read_body(request)
        return await self._edit(message, body, files)

    async def _delete_message(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        message.deleted = True
        await self._notify()
        return web.Response(status=204)

    async def _edit(self, message: SentMessage, body: JSON, files: list[Upload]) -> web.Response:
        message.apply(body, self._attachments(files))
        message.flags &= ~LOADING
        message.edits += 1
        await self._notify()
        return _json(message.to_payload(self))

    # ---- interaction responses ----------------------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None or str(record.id) != request.match_info["interaction_id"]:
            return _error(404, 10062, "Unknown interaction")
        deadline = self.interaction_deadline
        if deadline is not None and time.monotonic() - record.injected_at > deadline:
            self.expired.append(record)
            await self._notify()
            return _error(404, 10062, "Unknown interaction")
        if record.callbacks:
            # Discord refuses a second initial response; tests see it as the bot's HTTPException.
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body, files = await _read_body(request)
        kind = CallbackType(body["type"])
        data: JSON = body.get("data") or {}
        attachments = self._attachments(files)
        if not record.callbacks:
            record.responded_at = time.monotonic()
        record.callbacks.append(Callback(kind, data, attachments))

        resource: JSON = {"type": kind}
        if kind in (CallbackType.CHANNEL_MESSAGE, CallbackType.DEFERRED_CHANNEL_MESSAGE):
            channel_id = int(record.payload["channel_id"])
            record.original = self._new_message(channel_id, data, attachments)
            if kind == CallbackType.DEFERRED_CHANNEL_MESSAGE:
                record.original.flags |= LOADING
            resource["message"] = record.original.to_payload(self)
        elif kind == CallbackType.UPDATE_MESSAGE and record.component_message is not None:
            record.component_message.apply(data, attachments)
            record.component_message.edits += 1
            resource["message"] = record.component_message.to_payload(self)
        await self._notify()

        original = record.original
        interaction = {
            "id": str(record.id),
            "type": record.type,
            "response_message_id": str(original.id) if original else None,
            "response_message_loading": kind == CallbackType.DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(data.get("flags", 0) & EPHEMERAL),
        }
        # discord.py reads data["interaction"], so this must be a JSON body, never an empty 204.
        return _json({"interaction": interaction, "resource": resource})

    def _record_for_hook(self, request: web.Request) -> InteractionRecord | None:
        if int(request.match_info["app_id"]) != self.application_id:
            return None
        return self.interactions.get(request.match_info["token"])

    async def _post_followup(self, request: web.Request) -> web.Response:
        record = self._record_for_hook(request)
        if record is None:
            return _error(404, 10015, "Unknown Webhook")
        if not record.callbacks:
            return _error(400, 10062, "Unknown interaction: follow-up before a response")
        body, files = await _read_body(request)
        channel_id = int(record.payload["channel_id"])
        message = self._new_message(channel_id, body, self._attachments(files))
        record.followups.append(message)
        await self._notify()
        if request.query.get("wait", "false").lower() not in ("1", "true"):
            return web.Response(status=204)
        return _json(message.to_payload(self))

    def _hook_message(self, request: web.Request) -> SentMessage | None:
        record = self._record_for_hook(request)
        if record is None:
            return None
        wanted = request.match_info["message_id"]
        if wanted == "@original":
            # For a component interaction, @original is the message the component is on.
            original = record.original or record.component_message
            return original if original is not None and not original.deleted else None
        found = [m for m in record.followups if str(m.id) == wanted and not m.deleted]
        if record.original is not None and str(record.original.id) == wanted:
            found.append(record.original)
        return found[0] if found else None

    async def _get_hook_message(self, request: web.Request) -> web.Response:
        message = self._hook_message(request)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        return _json(message.to_payload(self))

    async def _patch_hook_message(self, request: web.Request) -> web.Response:
        message = self._hook_message(request)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        body, files = await _read_body(request)
        return await self._edit(message, body, files)

    async def _delete_hook_message(self, request: web.Request) -> web.Response:
        message = self._hook_message(request)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        message.deleted = True
        await self._notify()
        return web.Response(status=204)

    # ---- gateway ------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        # Text frames only: discord.py decompresses binary frames alone, so plain JSON always works.
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        self.connections += 1
        connection = self.connections
        self._connected_at[connection] = time.monotonic()
        try:
            hello = {"heartbeat_interval": self.heartbeat_interval * 1000}
            await ws.send_json({"op": 10, "d": hello})
            async for frame in ws:
                message = json.loads(frame.data)
                await self._on_gateway_op(ws, connection, message["op"], message.get("d"))
        finally:
            self._sockets.discard(ws)
            if self._ws is ws:
                self._ws = None
                self._ready.clear()
            await self._notify()
        return ws

    async def _on_gateway_op(
        self, ws: web.WebSocketResponse, connection: int, op: int, data: Any
    ) -> None:
        if op == 1:  # HEARTBEAT
            received = time.monotonic()
            self.heartbeats.append((connection, received))
            await ws.send_json({"op": 11})
            self.heartbeat_log.append(Heartbeat(connection, received, time.monotonic()))
        elif op == 2:  # IDENTIFY
            self.identifies.append(data)
            self._ws, self._seq = ws, 0
            self._session_id = f"session-{self.next_id()}"
            await self._send_dispatch("READY", self._ready_payload())
            await self._send_dispatch("GUILD_CREATE", self.guild_payload())
            self._ready.set()
        elif op == 6:  # RESUME
            self.resumes.append(data)
            if data.get("session_id") != self._session_id:
                await ws.send_json({"op": 9, "d": False})
                return
            self._ws = ws
            await self._send_dispatch("RESUMED", {})
            self._ready.set()
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            chunk = {
                "guild_id": str(self.guild_id),
                "members": [],
                "chunk_index": 0,
                "chunk_count": 1,
                "nonce": data.get("nonce"),
            }
            await self._send_dispatch("GUILD_MEMBERS_CHUNK", chunk, ws=ws)
        await self._notify()

    def _ready_payload(self) -> JSON:
        return {
            "v": 10,
            "user": self.user_payload(self.bot_user_id) | {"verified": True},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": self._session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "shard": [0, 1],
            "private_channels": [],
            "relationships": [],
        }

    async def _send_dispatch(
        self, event: str, data: JSON, ws: web.WebSocketResponse | None = None
    ) -> None:
        target = ws or self._ws
        if target is None:
            raise FakeDiscordError("no gateway connection")
        self._seq += 1
        await target.send_json({"op": 0, "t": event, "s": self._seq, "d": data})

    async def dispatch(self, event: str, data: JSON, within: float | None = None) -> None:
        """Send a gateway dispatch, waiting for the bot to be (re)connected first."""
        await self.wait_until_ready(within)
        await self._send_dispatch(event, data)

    async def reconnect(self, *, close_code: int | None = None, within: float | None = None) -> str:
        """Force a reconnect (op 7, or a close with close_code); returns "RESUME" or "IDENTIFY"."""
        if self._ws is None:
            raise FakeDiscordError("no gateway connection")
        resumes, identifies = len(self.resumes), len(self.identifies)
        self._ready.clear()
        if close_code is None:
            await self._ws.send_json({"op": 7, "d": None})
        else:
            await self._ws.close(code=close_code)
        await self.wait_until(
            lambda: len(self.resumes) > resumes or len(self.identifies) > identifies, within
        )
        await self.wait_until_ready(within)
        return "RESUME" if len(self.resumes) > resumes else "IDENTIFY"

    async def invalidate_session(
        self, *, resumable: bool = False, within: float | None = None
    ) -> None:
        """Send op 9 INVALID_SESSION and wait until the bot is connected again."""
        if self._ws is None:
            raise FakeDiscordError("no gateway connection")
        self._ready.clear()
        if not resumable:
            self._session_id = None
        await self._ws.send_json({"op": 9, "d": resumable})
        await self.wait_until_ready(within)

    def max_heartbeat_gap(self) -> float:
        """Longest time between two heartbeats on the same connection (0 if fewer than two)."""
        gaps = [
            later - earlier
            for (conn_a, earlier), (conn_b, later) in itertools.pairwise(self.heartbeats)
            if conn_a == conn_b
        ]
        return max(gaps, default=0.0)

    def late_heartbeats(self, tolerance: float, *, now: float | None = None) -> list[float]:
        """Gaps (seconds) between heartbeats on one connection longer than the interval plus
        `tolerance`, including the open gap since the last heartbeat of the live connection (a
        heartbeat that never came is late too). discord.py beats `interval` after its previous
        beat was sent, so a late beat means its event loop was blocked."""
        limit = self.heartbeat_interval + tolerance
        by_connection: dict[int, list[float]] = defaultdict(list)
        for beat in self.heartbeat_log:
            by_connection[beat.connection].append(beat.received)
        late = [
            later - earlier
            for times in by_connection.values()
            for earlier, later in itertools.pairwise(times)
            if later - earlier > limit
        ]
        live = self.connections if self._ws is not None else None
        if live is not None:
            # The first beat is jittered (up to one interval after HELLO), so count from there.
            last = by_connection[live][-1] if by_connection[live] else self._connected_at[live]
            pending = (time.monotonic() if now is None else now) - last
            if pending > limit + (0 if by_connection[live] else self.heartbeat_interval):
                late.append(pending)
        return late

    def ack_delays(self) -> list[float]:
        """Seconds the fake took to send each heartbeat's ACK (its own loop's delay)."""
        return [beat.acked - beat.received for beat in self.heartbeat_log]

    # ---- injected user actions ----------------------------------------------------------

    def find_command(self, name: str) -> JSON:
        """The synced command a user would see: the guild's one first, else the global one."""
        for command in [*self.guild_commands.get(self.guild_id, []), *self.global_commands]:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        raise FakeDiscordError(f"/{name} was never synced to the guild or globally")

    def _options(
        self,
        path: str,
        specs: list[JSON],
        values: Mapping[str, object],
        focused: str | None,
        resolved: JSON,
    ) -> list[JSON]:
        by_name = {spec["name"]: spec for spec in specs}
        options = []
        for name, value in values.items():
            spec = by_name.get(name)
            if spec is None:
                raise FakeDiscordError(f"{path} has no option {name!r}; it has {sorted(by_name)}")
            option: JSON = {"name": name, "type": spec["type"], "value": value}
            if spec["type"] in (_USER, _CHANNEL, _ROLE):
                option["value"] = str(value)
                self._resolve(spec["type"], int(str(value)), resolved)
            if name == focused:
                option["focused"] = True
            options.append(option)
        return options

    def _resolve(self, kind: int, snowflake: int, resolved: JSON) -> None:
        if kind == _ROLE:
            resolved.setdefault("roles", {})[str(snowflake)] = self.role_payload(
                self.roles[snowflake]
            )
        elif kind == _CHANNEL:
            payload = self.channel_payload(self.channels[snowflake])
            resolved.setdefault("channels", {})[str(snowflake)] = payload | {
                "permissions": str(ALL_PERMISSIONS)
            }
        else:
            member = self.member_payload(snowflake)
            resolved.setdefault("users", {})[str(snowflake)] = member.pop("user")
            resolved.setdefault("members", {})[str(snowflake)] = member

    def _command_data(
        self, name: str, options: Mapping[str, object], subcommand: str | None, focused: str | None
    ) -> JSON:
        command = self.find_command(name)
        resolved: JSON = {}
        specs: list[JSON] = command.get("options", [])
        path = f"/{name}"
        wrappers: list[JSON] = []  # subcommand group and/or subcommand option, outermost first
        for part in subcommand.split() if subcommand else []:
            spec = next(
                (
                    s
                    for s in specs
                    if s["name"] == part and s["type"] in (_SUBCOMMAND, _SUBCOMMAND_GROUP)
                ),
                None,
            )
            if spec is None:
                raise FakeDiscordError(f"{path} has no subcommand {part!r}")
            path = f"{path} {part}"
            wrappers.append({"name": part, "type": spec["type"]})
            specs = spec.get("options", [])
        leaf = self._options(path, specs, options, focused, resolved)
        for wrapper in reversed(wrappers):
            wrapper["options"], leaf = leaf, [wrapper]
        data: JSON = {"id": command["id"], "name": name, "type": 1, "options": leaf}
        if "guild_id" in command:
            # discord.py looks guild-synced commands up by data.guild_id.
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data

    async def _inject(
        self,
        kind: InteractionType,
        data: JSON,
        *,
        user: int,
        roles: Iterable[int],
        permissions: int | None,
        channel_id: int | None,
        message: SentMessage | None = None,
    ) -> InteractionRecord:
        channel = self.channels[channel_id or next(iter(self.channels))]
        interaction_id, token = self.next_id(), f"token-{self.next_id()}"
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": self.channel_payload(channel),
            "member": self.member_payload(user, roles, permissions),
            "token": token,
            "version": 1,
            "app_permissions": str(ALL_PERMISSIONS),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if message is not None:
            payload["message"] = message.to_payload(self)
        record = InteractionRecord(interaction_id, token, kind, payload, self)
        record.component_message = message
        self.interactions[token] = record
        await self.wait_until_ready()
        record.injected_at = time.monotonic()
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    async def invoke_command(
        self,
        name: str,
        options: Mapping[str, object] | None = None,
        *,
        subcommand: str | None = None,
        user: int = DEFAULT_USER_ID,
        roles: Iterable[int] = (),
        permissions: int | None = None,
        channel_id: int | None = None,
    ) -> InteractionRecord:
        """Run a synced slash command; subcommand is "sub" or "group sub"."""
        data = self._command_data(name, options or {}, subcommand, focused=None)
        return await self._inject(
            InteractionType.APPLICATION_COMMAND,
            data,
            user=user,
            roles=roles,
            permissions=permissions,
            channel_id=channel_id,
        )

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, object],
        *,
        focused: str,
        subcommand: str | None = None,
        user: int = DEFAULT_USER_ID,
        roles: Iterable[int] = (),
        channel_id: int | None = None,
        within: float | None = None,
    ) -> list[JSON]:
        """Type into option `focused` and return the bot's choices."""
        data = self._command_data(name, options, subcommand, focused=focused)
        record = await self._inject(
            InteractionType.AUTOCOMPLETE,
            data,
            user=user,
            roles=roles,
            permissions=None,
            channel_id=channel_id,
        )
        await record.wait_response(within)
        return record.choices

    async def begin_autocomplete(
        self,
        name: str,
        options: Mapping[str, object],
        *,
        focused: str,
        subcommand: str | None = None,
        user: int = DEFAULT_USER_ID,
        channel_id: int | None = None,
    ) -> InteractionRecord:
        """Like autocomplete(), but returns the interaction at once, without waiting."""
        data = self._command_data(name, options, subcommand, focused=focused)
        return await self._inject(
            InteractionType.AUTOCOMPLETE,
            data,
            user=user,
            roles=(),
            permissions=None,
            channel_id=channel_id,
        )

    async def click(
        self,
        target: SentMessage | InteractionRecord,
        custom_id: str,
        *,
        values: list[str] | None = None,
        user: int = DEFAULT_USER_ID,
        roles: Iterable[int] = (),
        permissions: int | None = None,
    ) -> InteractionRecord:
        """Click a button (or pick select `values`) on a message or an interaction's reply."""
        message = target.replies[0] if isinstance(target, InteractionRecord) else target
        if custom_id not in message.custom_ids():
            raise FakeDiscordError(
                f"message {message.id} has no component {custom_id!r}; "
                f"it has {message.custom_ids()}"
            )
        data: JSON = {"custom_id": custom_id, "component_type": 2}
        if values is not None:
            data |= {"component_type": 3, "values": values}
        return await self._inject(
            InteractionType.MESSAGE_COMPONENT,
            data,
            user=user,
            roles=roles,
            permissions=permissions,
            channel_id=message.channel_id,
            message=message,
        )

    async def submit_modal(
        self,
        record: InteractionRecord,
        values: Mapping[str, str],
        *,
        user: int = DEFAULT_USER_ID,
        roles: Iterable[int] = (),
        permissions: int | None = None,
    ) -> InteractionRecord:
        """Submit the modal the bot opened on `record`, values keyed by input label or custom_id."""
        callback = record.callback
        if callback is None or callback.type != CallbackType.MODAL:
            raise FakeDiscordError(f"interaction {record.id} did not open a modal")
        inputs = _text_inputs(callback.data.get("components", []))
        by_key = {i["custom_id"]: i for i in inputs}
        by_key |= {i["label"]: i for i in inputs if "label" in i}
        rows = []
        for key, value in values.items():
            if key not in by_key:
                raise FakeDiscordError(f"modal has no input {key!r}; it has {sorted(by_key)}")
            text_input = {"type": 4, "custom_id": by_key[key]["custom_id"], "value": value}
            rows.append({"type": 1, "components": [text_input]})
        data = {"custom_id": callback.data["custom_id"], "components": rows}
        return await self._inject(
            InteractionType.MODAL_SUBMIT,
            data,
            user=user,
            roles=roles,
            permissions=permissions,
            channel_id=int(record.payload["channel_id"]),
        )

    async def send_user_message(
        self,
        channel_id: int,
        content: str,
        *,
        user: int = DEFAULT_USER_ID,
        roles: Iterable[int] = (),
        mention_bot: bool = True,
    ) -> JSON:
        """Dispatch MESSAGE_CREATE for a user's message, by default mentioning the bot."""
        member = self.member_payload(user, roles)
        author = member.pop("user")
        mentions = []
        if mention_bot:
            content = f"<@{self.bot_user_id}> {content}"
            mentions.append(self.user_payload(self.bot_user_id))
        payload = {
            "id": str(self.next_id()),
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "type": 0,
            "author": author,
            "member": member,
            "content": content,
            "embeds": [],
            "components": [],
            "attachments": [],
            "mentions": mentions,
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "flags": 0,
            "timestamp": "2025-01-01T00:00:00+00:00",
            "edited_timestamp": None,
        }
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload


def _text_inputs(components: list[JSON]) -> list[JSON]:
    """Text inputs of a modal, whether in action rows (type 1) or labels (type 18)."""
    found: list[JSON] = []
    for component in components:
        if component.get("type") == 4:
            found.append(component)
        elif component.get("type") == 18:
            inner = component.get("component", {})
            found.extend(_text_inputs([inner | {"label": component.get("label", "")}]))
        found.extend(_text_inputs(component.get("components", [])))
    return found


@asynccontextmanager
async def running(
    client: ClientT, *, token: str = TOKEN, within: float = 5.0
) -> AsyncIterator[ClientT]:
    """Log the client in, connect it in a task and wait until ready; close it on exit."""
    await client.login(token)
    connection = asyncio.create_task(client.connect(), name="fake-discord-client")
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        # If connect() fails (bad payload, refused identify) surface its error, not a timeout.
        done, _ = await asyncio.wait(
            {connection, ready}, timeout=within, return_when=asyncio.FIRST_COMPLETED
        )
        if connection in done:
            connection.result()
            raise FakeDiscordError("the client disconnected before it was ready")
        if ready not in done:
            raise TimeoutError(f"the client was not ready within {within}s")
        yield client
    finally:
        ready.cancel()
        await client.close()
        await connection
