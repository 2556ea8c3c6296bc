"""The one build step pyproject.toml cannot declare: compile the web UI's message catalogs
(.po → .mo) whenever the package is built, so that a wheel, `pip install .` or
`pip install -e .` speaks Japanese without the project's scripts (issue 16, finding 3).

Everything else about the package is in pyproject.toml; setuptools reads this file beside it.
"""
from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CATALOGS = Path("webui") / "translations"


def compile_catalogs(directory: Path) -> list[Path]:
    """Write a .mo beside every <locale>/LC_MESSAGES/*.po under *directory*.

    A catalog with a broken entry (a placeholder the translation lacks…) stops the build:
    shipping it would show staff an English or garbled line where Japanese was expected.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        problems = [f"{po}: {message.id!r}: {error}"
                    for message, errors in catalog.check() for error in errors]
        if problems:
            raise SystemExit("message catalog errors:\n" + "\n".join(problems))
        mo = po.with_suffix(".mo")
        with mo.open("wb") as target:
            write_mo(target, catalog)
        written.append(mo)
    if not written:
        raise SystemExit(f"no message catalog (*.po) under {directory}")
    return written


class BuildPyWithCatalogs(build_py):
    """build_py, then the catalogs compiled where the installed package will read them."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            # An editable install imports the source tree: compile its catalogs in place.
            compile_catalogs(Path(__file__).resolve().parent / CATALOGS)
        else:
            # install_lib copies the whole build directory into the wheel, .mo files too.
            compile_catalogs(Path(self.build_lib) / CATALOGS)


setup(cmdclass={"build_py": BuildPyWithCatalogs})
