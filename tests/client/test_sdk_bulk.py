"""The bulk helpers: any number of accounts, batches of 100 run concurrently, a result per account."""

from __future__ import annotations

import pytest
from sdk_support import ImApp
from support import uid

from timserver.client import Account, AccountResult, ApiError, AsyncClient, Client, Retry

pytestmark = pytest.mark.slow


def users(n: int, prefix: str = "u") -> list[str]:
    return [uid(prefix) for _ in range(n)]


def by_id(results: list[AccountResult]) -> dict[str, AccountResult]:
    return {r.user_id: r for r in results}


def test_import_check_delete_in_batches_sync(im: ImApp) -> None:
    ids = users(250)
    with im.client() as client:
        imported = client.import_accounts(ids)
        assert [r.user_id for r in imported] == ids and all(r.ok for r in imported)
        assert client.stats.requests == 3  # 100 + 100 + 50

        checked = client.check_accounts([*ids, "ghost", ids[0]])  # duplicates are fine
        assert [r.user_id for r in checked] == [*ids, "ghost", ids[0]]
        assert {r.status for r in checked[:250]} == {"Imported"}
        assert checked[250] == AccountResult("ghost", 0, "", "NotImported")
        assert client.stats.requests == 6

        deleted = client.delete_accounts([*ids[:150], "ghost"])
        assert all(r.ok for r in deleted[:150])
        assert deleted[150].code == 70107 and deleted[150].info == (
            "Err_TLS_PT_Open_Login_Account_Not_Exist")
        left = client.check_accounts(ids)
        assert [r.status for r in left] == ["NotImported"] * 150 + ["Imported"] * 100


async def test_import_check_delete_in_batches_async(im: ImApp) -> None:
    ids = users(1050)
    async with im.aclient() as client:
        imported = await client.import_accounts(ids, concurrency=4)
        assert [r.user_id for r in imported] == ids and all(r.ok for r in imported)
        assert client.stats.requests == 11
        checked = await client.check_accounts(ids)
        assert {r.status for r in checked} == {"Imported"}
        assert all(r.ok for r in await client.delete_accounts(ids))
        assert {r.status for r in await client.check_accounts(ids)} == {"NotImported"}


async def test_import_takes_ids_dicts_and_accounts_with_profiles(im: ImApp) -> None:
    a, b, c = users(3)
    bad = "x" * 33  # over 32 bytes: refused by the server for that account only
    async with im.aclient() as client:
        results = await client.import_accounts(
            [a, {"UserID": b, "Nick": "Bee"}, Account(UserID=c, FaceUrl="http://c/1.png"), bad])
        assert [(r.user_id, r.code) for r in results] == [(a, 0), (b, 0), (c, 0), (bad, 70402)]
        assert "32" in results[3].info  # the reason, from the single import that explained it
        # FailAccounts said "failed" without a reason: one account_import call asked for it.
        assert client.stats.requests == 2
    with Client(im.sdkappid, im.key, im.admin, im.endpoint) as sync, pytest.raises(TypeError):
        sync.import_accounts([42])  # type: ignore[list-item]


def test_trial_cap_gives_each_account_its_own_code(im: ImApp) -> None:
    im.set_edition("trial")  # at most 100 accounts
    ids = users(120)
    with im.client() as client:
        results = client.import_accounts(ids, batch_size=40)
    codes = [r.code for r in results]
    assert codes.count(0) == 100 and codes.count(70398) == 20


def test_items_failed_by_the_server_are_retried_one_by_one(im: ImApp) -> None:
    flaky, fine = uid("flaky"), uid("fine")
    # The server lists `flaky` in FailAccounts once; imported alone it succeeds.
    im.fault("--command", "multiaccount_import", "--fail-items", "--userid", flaky, "--times", "1")
    with im.client() as client:
        results = client.import_accounts([fine, flaky])
        assert [r.ok for r in results] == [True, True]
        assert {r.status for r in client.check_accounts([fine, flaky])} == {"Imported"}


async def test_a_batch_refused_as_a_whole_fails_its_accounts_and_the_run_goes_on(im: ImApp) -> None:
    im.fault("--command", "account_check", "--code", "70402", "--times", "1")
    ids = users(300)
    async with im.aclient() as client:
        results = await client.check_accounts(ids, concurrency=1)
    assert [r.code for r in results] == [70402] * 100 + [0] * 200
    assert [r.user_id for r in results] == ids


async def test_a_systemic_failure_stops_the_run(im: ImApp) -> None:
    finished: list[int] = []
    async with AsyncClient(im.sdkappid, "0" * 64, im.admin, im.endpoint) as client:
        with pytest.raises(ApiError) as stopped:
            await client.import_accounts(users(500), on_batch=lambda i, r: finished.append(i))
    assert stopped.value.code == 70009 and finished == []


def test_retries_inside_a_bulk_run(im: ImApp) -> None:
    im.fault("--command", "account_delete", "--code", "70169", "--times", "2")
    ids = users(200)
    with im.client(retry=Retry(backoff=0.05)) as client:
        client.import_accounts(ids)
        assert all(r.ok for r in client.delete_accounts(ids))
    assert client.stats.retried[70169] == 2


async def test_on_batch_and_skip_batches(im: ImApp) -> None:
    ids = users(250)
    seen: dict[int, list[AccountResult]] = {}
    async with im.aclient() as client:
        results = await client.import_accounts(ids, batch_size=50, skip_batches={1, 3},
                                               on_batch=seen.__setitem__)
        assert sorted(seen) == [0, 2, 4] and client.stats.requests == 3
        assert [r.user_id for r in results] == ids[:50] + ids[100:150] + ids[200:]
        assert [r.user_id for r in seen[2]] == ids[100:150]
        status = by_id(await client.check_accounts(ids))
    assert [status[u].status for u in ids] == (["Imported"] * 50 + ["NotImported"] * 50) * 2 + [
        "Imported"] * 50
    with pytest.raises(ValueError, match="batch_size"):
        await client.check_accounts(ids, batch_size=101)
