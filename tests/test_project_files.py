"""The project's own files say what pyproject.toml declares: the license text, the pins."""

from __future__ import annotations

import tomllib

from tests.conftest import PROJECT


def test_the_license_file_is_the_apache_2_0_text_pyproject_declares() -> None:
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "Apache-2.0"
    text = (PROJECT / "LICENSE").read_text()
    assert "Apache License" in text.split("\n", 3)[1] and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the whole text, not a pointer to it
    assert "APPENDIX: How to apply the Apache License to your work." in text


def test_openfeature_sdk_is_pinned_to_a_version_that_imports() -> None:
    """openfeature-sdk 0.8.0 and 0.8.1 fail to import; 0.8.2 works (issue 21)."""
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    pins = [d for deps in meta["optional-dependencies"].values() for d in deps
            if d.startswith("openfeature-sdk")]
    assert pins and set(pins) == {"openfeature-sdk>=0.8.2"}
