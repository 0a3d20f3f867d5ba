"""Constants shared by the web-console tests (imported after conftest.py puts this folder on
sys.path, as tests/contract does)."""

TOKEN = "console-test-token-0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LIVE_APP = 1400000777
OTHER_APP = 1400000778
OTHER_KEY = "a" * 64
