"""Every command through the SDK, sync and async, against a real server on a loopback port."""

from __future__ import annotations

import pytest
from sdk_support import ImApp
from support import uid

from timserver import usersig
from timserver.client import ApiError, AsyncClient, Client
from timserver.protocol import messages as m
from timserver.protocol.commands import ACCOUNT_CHECK

pytestmark = pytest.mark.slow


def statuses(answer: m.AccountCheckResponse) -> dict[str, str]:
    return {i.UserID: i.AccountStatus for i in answer.ResultItem}


def test_every_command_sync(im: ImApp) -> None:
    alice, bob, carol, dave = (uid(n) for n in ("alice", "bob", "carol", "dave"))
    with im.client() as client:
        assert client.account_import(UserID=alice, Nick="Alice") == m.Envelope()
        imported = client.multiaccount_import(Accounts=[bob, "x" * 33])
        assert isinstance(imported, m.MultiAccountImportResponse)
        assert imported.FailAccounts == ["x" * 33]
        listed = client.multiaccount_import(m.MultiAccountImportRequest(
            AccountList=[m.AccountListItem(UserID=carol, Nick="Carol", FaceUrl="http://c/1.png")]))
        assert listed.FailAccounts == []
        check = client.account_check(CheckItem=[{"UserID": u} for u in (alice, bob, carol, dave)])
        assert isinstance(check, m.AccountCheckResponse)
        assert statuses(check) == {alice: "Imported", bob: "Imported", carol: "Imported",
                                   dave: "NotImported"}
        deleted = client.account_delete({"DeleteItem": [{"UserID": bob}, {"UserID": dave}]})
        assert [(i.UserID, i.ResultCode) for i in deleted.ResultItem] == [(bob, 0), (dave, 70107)]
        assert client.kick(UserID=alice) == m.Envelope()
        assert statuses(client.call("account_check", CheckItem=[{"UserID": bob}])) == {
            bob: "NotImported"}
        assert client.stats.requests == 7 and client.stats.retries == 0


async def test_every_command_async(im: ImApp) -> None:
    alice, bob = uid("alice"), uid("bob")
    async with im.aclient() as client:
        assert await client.account_import(m.AccountImportRequest(UserID=alice)) == m.Envelope()
        assert (await client.multiaccount_import(AccountList=[{"UserID": bob, "Nick": "B"}])
                ).FailAccounts == []
        check = await client.call(ACCOUNT_CHECK, CheckItem=[{"UserID": alice}, {"UserID": bob}])
        assert statuses(check) == {alice: "Imported", bob: "Imported"}
        assert await client.kick(UserID=bob) == m.Envelope()
        deleted = await client.account_delete(DeleteItem=[{"UserID": alice}])
        assert deleted.ResultItem[0].ResultCode == 0
        check = await client.account_check(CheckItem=[{"UserID": alice}])
        assert statuses(check) == {alice: "NotImported"}


def test_a_failed_call_raises_with_code_info_and_command(im: ImApp) -> None:
    with im.client() as client:
        with pytest.raises(ApiError) as missing:
            client.kick(UserID=uid("nobody"))
        assert missing.value.code == 70107 and missing.value.command == "kick"
        assert "does not exist" in missing.value.info and not missing.value.retryable
        assert missing.value.attempts == 1 and client.stats.retries == 0
        with pytest.raises(ApiError) as too_many:  # refused by the server, not by the SDK
            client.account_check(CheckItem=[{"UserID": f"u{i}"} for i in range(101)])
        assert too_many.value.code == 70402 and client.stats.requests == 2


def test_a_wrong_key_is_not_retried(im: ImApp) -> None:
    with Client(im.sdkappid, "0" * 64, im.admin, im.endpoint) as client:
        with pytest.raises(ApiError) as refused:
            client.account_check(CheckItem=[{"UserID": "a"}])
    assert refused.value.code == 70009 and client.stats.requests == 1
    assert im.key not in str(refused.value)


def test_kicked_admin_signs_again_and_goes_on(im: ImApp) -> None:
    with im.client() as client:
        client.account_check(CheckItem=[{"UserID": "a"}])
        first_sig = client.signer.current()
        client.kick(UserID=im.admin)  # invalidates every sig of the admin signed until now
        answer = client.account_check(CheckItem=[{"UserID": im.admin}])
        assert statuses(answer) == {im.admin: "Imported"}
        assert client.stats.retried[70005] == 1 and client.signer.signed == 2
        assert usersig.decode(client.signer.current()).time > usersig.decode(first_sig).time


def test_endpoint_from_the_environment(im: ImApp, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in im.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TIMSERVER_ENDPOINT", im.endpoint + "/")
    with Client.from_env() as client:
        assert client.account_check(CheckItem=[{"UserID": im.admin}]).ResultItem[0].ResultCode == 0
    monkeypatch.delenv("TIMSERVER_KEY")
    with pytest.raises(ValueError, match="TIMSERVER_KEY"):
        AsyncClient.from_env()
