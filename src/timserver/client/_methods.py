"""One typed method per REST command, bound from the command table (protocol/commands.py).

``Commands`` is a base class of both clients. Each attribute is a :class:`Method` made from a
command's declaration; on a :class:`~timserver.client.Client` it is a function that returns the
command's response struct, on an :class:`~timserver.client.AsyncClient` a coroutine function.
A command added to the table gets its method with no code here (the loop at the end binds it);
one line below gives it static types too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

from msgspec import Struct

from ..protocol import commands as c
from ..protocol.commands import COMMANDS, Command

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .sync import Client

ReqT = TypeVar("ReqT", bound=Struct)
RespT = TypeVar("RespT", bound=Struct)


class SyncMethod(Generic[ReqT, RespT]):
    """A command bound to a :class:`Client`: call it with a request struct, a dict or keywords."""

    __slots__ = ("_client", "command")

    def __init__(self, client: Client, command: Command[ReqT, RespT]) -> None:
        self._client = client
        self.command = command

    def __call__(self, request: ReqT | Mapping[str, Any] | None = None, /, **fields: Any) -> RespT:
        return self._client.call(self.command, request, **fields)

    def __repr__(self) -> str:
        return f"<method {self.command.name} of {self._client!r}>"


class AsyncMethod(Generic[ReqT, RespT]):
    """A command bound to an :class:`AsyncClient`; calling it returns an awaitable."""

    __slots__ = ("_client", "command")

    def __init__(self, client: AsyncClient, command: Command[ReqT, RespT]) -> None:
        self._client = client
        self.command = command

    def __call__(self, request: ReqT | Mapping[str, Any] | None = None, /,
                 **fields: Any) -> Awaitable[RespT]:
        return self._client.call(self.command, request, **fields)

    def __repr__(self) -> str:
        return f"<async method {self.command.name} of {self._client!r}>"


class Method(Generic[ReqT, RespT]):
    """Descriptor: the method of a command, on whichever client it is read from."""

    def __init__(self, command: Command[ReqT, RespT]) -> None:
        self.command = command
        self.__doc__ = f"{command.summary} ({command.path}); returns a {command.response.__name__}."

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: Client, owner: type) -> SyncMethod[ReqT, RespT]: ...
    @overload
    def __get__(self, obj: AsyncClient, owner: type) -> AsyncMethod[ReqT, RespT]: ...

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        return obj._method_type(obj, self.command)


class Commands:
    """The REST commands, one line each (the table in protocol/commands.py is the source)."""

    account_import = Method(c.ACCOUNT_IMPORT)
    multiaccount_import = Method(c.MULTIACCOUNT_IMPORT)
    account_delete = Method(c.ACCOUNT_DELETE)
    account_check = Method(c.ACCOUNT_CHECK)
    kick = Method(c.KICK)
    query_online_status = Method(c.QUERY_ONLINE_STATUS)
    querystate = Method(c.QUERYSTATE)
    portrait_get = Method(c.PORTRAIT_GET)
    portrait_set = Method(c.PORTRAIT_SET)


# Any command of the table without its line above still gets its method (untyped).
for _command in COMMANDS:
    if not hasattr(Commands, _command.name):
        setattr(Commands, _command.name, Method(_command))
