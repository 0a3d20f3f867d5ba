"""The SDK's parts that do no I/O: regions, pacing, backoff, signing, method binding, inputs."""

from __future__ import annotations

import threading

import httpx
import msgspec
import pytest
from support import KEY, SDKAPPID

from timserver import usersig
from timserver.client import (
    REGIONS,
    RETRYABLE_CODES,
    Account,
    ApiError,
    AsyncClient,
    Client,
    InputError,
    NetworkError,
    Pacer,
    Retry,
    Signer,
    base_url,
    parse_accounts,
)
from timserver.client._methods import AsyncMethod, Commands, Method, SyncMethod
from timserver.client._pacing import MARGIN, POLL, WINDOW
from timserver.protocol import messages as m
from timserver.protocol.commands import ACCOUNT_CHECK, COMMANDS, DEFAULT_RATES, MULTIACCOUNT_IMPORT


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --- endpoints ----------------------------------------------------------------------------------

SPEC_HOSTS = {  # docs/protocol.md §2.2
    "china": ("console.tim.qq.com", "adminapi.my-imcloud.com"),
    "singapore": ("adminapisgp.im.qcloud.com", "adminapisgp.my-imcloud.com"),
    "seoul": ("adminapikr.im.qcloud.com", "adminapikr.my-imcloud.com"),
    "frankfurt": ("adminapiger.im.qcloud.com", "adminapiger.my-imcloud.com"),
    "mumbai": ("adminapiind.im.qcloud.com", "adminapiind.my-imcloud.com"),
    "usa": ("adminapiusa.im.qcloud.com", "adminapiusa.my-imcloud.com"),
    "jakarta": ("adminapiidn.im.qcloud.com", "adminapiidn.my-imcloud.com"),
    "tokyo": ("adminapijpn.im.qcloud.com", "adminapijpn.my-imcloud.com"),
}


@pytest.mark.parametrize("region", sorted(SPEC_HOSTS))
def test_regions_are_the_hosts_of_the_spec(region: str) -> None:
    host, backup = SPEC_HOSTS[region]
    assert base_url(region) == f"https://{host}"
    assert base_url(region.upper()) == f"https://{host}"
    assert base_url(f"{region}-backup") == f"https://{backup}"


def test_every_region_is_known_and_base_urls_pass_through() -> None:
    assert set(REGIONS) == set(SPEC_HOSTS)
    assert base_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert base_url("https://im.example.com/prefix") == "https://im.example.com/prefix"
    for bad in ("mars", "127.0.0.1:8080", "ftp://x", "http://"):
        with pytest.raises(ValueError, match="unknown endpoint"):
            base_url(bad)


def test_client_builds_tencent_urls() -> None:
    client = Client(SDKAPPID, KEY, "admin one", "singapore")
    try:
        url = httpx.URL(client._url(ACCOUNT_CHECK, "sig*-_"))
    finally:
        client.close()
    assert (url.scheme, url.host, url.path) == ("https", "adminapisgp.im.qcloud.com",
                                                "/v4/im_open_login_svc/account_check")
    assert url.query.decode().startswith(f"sdkappid={SDKAPPID}&identifier=admin%20one&"
                                         "usersig=sig*-_&random=")
    params = dict(url.params)
    assert params["contenttype"] == "json" and 0 <= int(params["random"]) < 2**32


# --- pacing -------------------------------------------------------------------------------------


def test_pacer_sends_a_windows_calls_at_once_then_waits_for_the_oldest_answer() -> None:
    """A strict one-second sliding window admits RATE calls together: they all leave at the
    window's start; the next one leaves a second after the oldest *answer* (not its send)."""
    clock = FakeClock(0.0)
    pacer = Pacer({"kick": 4}, clock=clock)
    assert [pacer.admit("kick") for _ in range(4)] == [0, 0, 0, 0]  # together, no spacing
    assert pacer.admit("kick") == pytest.approx(POLL)  # all four still in flight
    for t in (0.1, 0.2, 0.3, 0.4):
        clock.t = t
        pacer.done("kick")
    assert pacer.admit("kick") == pytest.approx(0.1 + WINDOW + MARGIN - 0.4)
    clock.t = 0.1 + WINDOW + MARGIN + 1e-6
    assert pacer.admit("kick") == 0 and pacer.admit("kick") > 0  # one answer left the window
    assert pacer.admit("account_check") == 0  # another command has its own window


def test_pacer_rates_default_to_the_table_and_can_be_overridden() -> None:
    pacer = Pacer({"kick": 10, "account_check": 0})
    assert pacer.rates == {**DEFAULT_RATES, "kick": 10, "account_check": 0}
    assert pacer.cap("kick") == 10
    assert pacer.cap("multiaccount_import") == MULTIACCOUNT_IMPORT.default_rate  # the whole limit
    assert [pacer.admit("account_check") for _ in range(300)] == [0.0] * 300  # 0: unpaced
    pacer.done("account_check")  # not counted: nothing to undo
    assert Pacer({"kick": 10}, headroom=0.5).cap("kick") == 5
    with pytest.raises(ValueError):
        Pacer(headroom=0)


def test_pacer_window_is_shared_by_threads() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer({"kick": 50}, clock=clock)
    admitted: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            w = pacer.admit("kick")
            with lock:
                admitted.append(w)
    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 200 asks from 8 threads in the same instant: exactly the window's 50 may leave.
    assert admitted.count(0.0) == 50 and len(admitted) == 200


# --- backoff ------------------------------------------------------------------------------------


def test_backoff_is_exponential_bounded_and_jittered() -> None:
    retry = Retry(attempts=8, backoff=0.1, multiplier=2, max_backoff=1.0)
    for n, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (7, 1.0)]:
        delays = {retry.delay(n) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jitter
    assert Retry().codes == RETRYABLE_CODES == {40006, 60007, 60008, 70169, 70202, 70500}
    for bad in ({"attempts": 0}, {"backoff": -1}, {"multiplier": 0.5}):
        with pytest.raises(ValueError):
            Retry(**bad)  # type: ignore[arg-type]


# --- signing ------------------------------------------------------------------------------------


def test_signer_signs_valid_sigs_and_renews_before_expiry() -> None:
    clock = FakeClock(1_700_000_000)
    signer = Signer(SDKAPPID, KEY, "administrator", ttl=1000, clock=clock)  # renews 100 s early
    first = signer.current()
    doc = usersig.verify(first, sdkappid=SDKAPPID, identifier="administrator", key=KEY,
                         now=int(clock.t))
    assert (doc.time, doc.expire) == (1_700_000_000, 1000)
    clock.t += 899
    assert signer.current() == first and signer.signed == 1
    clock.t += 1  # 100 s of validity left: time for a new one
    second = signer.current()
    assert second != first and signer.signed == 2
    assert usersig.decode(second).time == 1_700_000_900


def test_signer_renews_a_refused_sig_in_a_later_second() -> None:
    clock = FakeClock(1_700_000_000.25)
    signer = Signer(SDKAPPID, KEY, "administrator", clock=clock)
    refused = signer.current()
    signer.renew("not the current sig")  # a stale refusal does not throw a good sig away
    assert signer.current() == refused and signer.ready_in() == 0
    signer.renew(refused)  # e.g. 70005: a kick in this very second refuses any sig of it
    assert signer.ready_in() == pytest.approx(0.75)
    clock.t += 0.75
    assert signer.ready_in() == 0
    assert usersig.decode(signer.current()).time == 1_700_000_001


def test_nothing_shows_the_key_or_a_sig() -> None:
    signer = Signer(SDKAPPID, KEY, "administrator")
    sig = signer.current()
    client = Client(SDKAPPID, KEY, "administrator", "http://127.0.0.1:9")
    aclient = AsyncClient(SDKAPPID, KEY, "administrator", "usa")
    try:
        for text in (repr(signer), repr(client), repr(aclient), repr(client.account_check),
                     repr(client.signer)):
            assert KEY not in text and sig not in text
    finally:
        client.close()


# --- methods from the command table -------------------------------------------------------------


def test_every_command_of_the_table_is_a_typed_method_of_both_clients() -> None:
    client = Client(SDKAPPID, KEY, "administrator", "china")
    aclient = AsyncClient(SDKAPPID, KEY, "administrator", "china")
    try:
        for command in COMMANDS:
            descriptor = vars(Commands)[command.name]  # declared once, for both clients
            assert isinstance(descriptor, Method) and descriptor.command is command
            assert isinstance(getattr(client, command.name), SyncMethod)
            assert isinstance(getattr(aclient, command.name), AsyncMethod)
            assert getattr(client, command.name).command is command
            assert command.summary in (getattr(Client, command.name).__doc__ or "")
    finally:
        client.close()


def test_timserver_exports_the_clients_lazily() -> None:
    import subprocess
    import sys

    import timserver
    import timserver.client

    assert timserver.Client is timserver.client.Client
    assert timserver.AsyncClient is timserver.client.AsyncClient
    probe = "import sys, timserver; print('httpx' in sys.modules, 'timserver.client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]  # `import timserver` stays cheap


def test_a_request_is_a_struct_a_mapping_or_keywords() -> None:
    encode = Client._encode
    struct = m.AccountCheckRequest(CheckItem=[m.UserRef(UserID="a")])
    expected = b'{"CheckItem":[{"UserID":"a"}]}'
    assert encode(ACCOUNT_CHECK, struct, {}) == expected
    assert encode(ACCOUNT_CHECK, {"CheckItem": [{"UserID": "a"}]}, {}) == expected
    assert encode(ACCOUNT_CHECK, None, {"CheckItem": [{"UserID": "a"}]}) == expected
    assert encode(MULTIACCOUNT_IMPORT, None, {"Accounts": ["x"]}) == b'{"Accounts":["x"]}'
    with pytest.raises(TypeError, match="invalid request"):
        encode(ACCOUNT_CHECK, None, {"CheckItem": [{"UserID": 7}]})
    with pytest.raises(TypeError, match="takes a AccountCheckRequest"):
        encode(ACCOUNT_CHECK, m.KickRequest(UserID="a"), {})
    with pytest.raises(ValueError, match="unknown command"):
        Client._command("account_create")


# --- reading answers ----------------------------------------------------------------------------


def read(status: int, content: bytes, command=MULTIACCOUNT_IMPORT):  # type: ignore[no-untyped-def]
    client = Client(SDKAPPID, KEY, "administrator", "china")
    try:
        return client._read(command, httpx.Response(status, content=content))
    finally:
        client.close()


def test_answers_become_typed_results_or_errors() -> None:
    ok = read(200, b'{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["b"]}')
    assert ok == m.MultiAccountImportResponse(FailAccounts=["b"])
    # Tencent may omit an empty FailAccounts (docs/protocol.md §7.2): it reads as an empty list.
    assert read(200, b'{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}').FailAccounts == []
    with pytest.raises(ApiError) as failed:
        read(200, b'{"ActionStatus":"FAIL","ErrorInfo":"busy","ErrorCode":70169}')
    assert (failed.value.code, failed.value.info, failed.value.command) == (
        70169, "busy", "multiaccount_import")
    assert failed.value.retryable and failed.value.name == "SERVER_TIMEOUT"
    with pytest.raises(NetworkError) as gateway:
        read(502, b"<html>Bad Gateway</html>")
    assert gateway.value.status_code == 502 and gateway.value.retryable
    with pytest.raises(NetworkError) as garbage:
        read(200, b"<html>hello</html>")
    assert not garbage.value.retryable


# --- input files --------------------------------------------------------------------------------


def test_csv_with_header() -> None:
    text = b'\xef\xbb\xbfUserID,Nick,FaceUrl\r\nalice,Alice,http://a/1.png\r\nbob,,\r\n\r\n"c,d","N, q",\r\n'
    assert parse_accounts(text) == [
        Account(UserID="alice", Nick="Alice", FaceUrl="http://a/1.png"),
        Account(UserID="bob"),  # an empty cell is "not given"
        Account(UserID="c,d", Nick="N, q"),
    ]
    assert parse_accounts("UserID\nx\ny\n") == [Account(UserID="x"), Account(UserID="y")]
    with pytest.raises(InputError, match="line 3: no UserID"):
        parse_accounts("UserID,Nick\nx,\n,n\n")


def test_ndjson_and_plain_lines() -> None:
    ndjson = '{"UserID":"a","Nick":"A","Extra":1}\n\n{"UserID":"b","FaceUrl":"u"}\n'
    assert parse_accounts(ndjson) == [Account(UserID="a", Nick="A"), Account(UserID="b", FaceUrl="u")]
    with pytest.raises(InputError, match="line 2"):
        parse_accounts('{"UserID":"a"}\n{"UserID":12}\n')
    # One UserID a line, as it is (inner spaces kept; CRLF and blank lines dropped).
    assert parse_accounts("user 1\r\n\r\nuser_2\n") == [Account(UserID="user 1"),
                                                        Account(UserID="user_2")]
    assert msgspec.json.encode(parse_accounts("x")[0]) == b'{"UserID":"x"}'
