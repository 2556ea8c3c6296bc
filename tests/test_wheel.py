"""A built wheel carries the compiled Japanese catalog (issue 16, finding 3).

The wheel is built from a copy of the source with every compiled catalog (.mo) removed, so
only the build step can have made the one inside it; it is installed into a fresh venv,
which then renders the login page. Offline: the build uses this venv's setuptools, wheel
and Babel (the dev extras hold build-system.requires), and the fresh venv takes the
wheel alone from disk; its dependencies are read from this venv's site-packages.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "var", "test-output", "build", "dist",
                                    "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "*.mo")

# Run inside the fresh venv: the login page, as a browser asking for nothing in particular
# (Japanese is the default) and after a click on English.
RENDER_LOGIN = """
import sys, webui
from pathlib import Path
from appliance import config
from webui import create_app
assert Path(webui.__file__).is_relative_to(Path(sys.prefix)), webui.__file__
app = create_app(config.load(sys.argv[1]), testing=True)
client = app.test_client()
print(client.get("/login").get_data(as_text=True))
print(client.get("/login?lang=en").get_data(as_text=True))
"""


def _site_packages(python: Path) -> Path:
    return Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())


def test_a_wheel_installed_in_a_fresh_venv_shows_the_login_page_in_japanese(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    assert not list(source.rglob("*.mo"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                    "--no-build-isolation", "-q", "-w", str(dist), str(source)],
                   check=True, capture_output=True, timeout=120)
    [wheel] = dist.glob("tsunagu-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "webui/translations/ja/LC_MESSAGES/messages.mo" in archive.namelist()

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-index", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=120)
    # The dependencies (Flask, Flask-Babel…) from this venv, after the fresh one's own
    # packages: a path in a .pth is appended, so the wheel's webui is the one imported.
    here = Path(sysconfig.get_paths()["purelib"])
    (_site_packages(python) / "dependencies.pth").write_text(f"{here}\n", encoding="utf-8")

    config = tmp_path / "tsunagu.toml"
    config.write_text(f'database = "{tmp_path / "t.db"}"\n[[modem]]\nname = "m0"\n'
                      'port = "/dev/null"\n', encoding="utf-8")
    page = subprocess.run([str(python), "-c", RENDER_LOGIN, str(config)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert page.returncode == 0, page.stderr[-3000:]
    japanese, english = page.stdout.split("</html>", 1)
    assert "ログイン" in japanese and "パスワード" in japanese
    assert "Log in" in english  # the catalog is chosen per request, not baked in
