"""Where a client's flags come from: an artifact file, an artifact URL, a checkout, behind one interface.

A source is looked at (:meth:`FlagSource.load`) and answers with the compiled flags
(:class:`FlagSet`) when they changed since its last good look, ``None`` when they did not,
or raises :class:`FlagSourceError` when the look failed (the client keeps its last good
flags). Each source remembers what it last loaded and what it last refused, so a source
that keeps failing the same way says so once (:attr:`FlagSourceError.new`), and an
unchanged source costs a few stats or a ``304``. When and on which thread a source is
looked at is the client's business (``client.py``: the evaluation path for a file,
``poller.py`` for a URL or a checkout); a source only reads and compiles.

Given public keys, a file or URL source also reads the publication's signature beside the
artifact (``flags.sig``, see :mod:`runner.signing`) and hands over only an artifact whose
exact bytes it signs: a missing or bad signature is refused like a bad artifact. That is
done here, at load, never per evaluation.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runner.errors import ExternalError
from runner.evaluate.artifact import MAX_ARTIFACT_BYTES
from runner.evaluate.compile import ArtifactError, FlagSet
from runner.files import read_regular
from runner.model.environments import ENVIRONMENT_NAME
from runner.model.flagsets import SET_NAME

if TYPE_CHECKING:  # imported when a URL is used: applications on a file never pay for HTTP
    from runner.remote import UrlSource

#: The canonical name of the native artifact in a signature's ``files`` (runner/signing.py),
#: whatever the file or URL is called
SIGNED_ARTIFACT = "flags.json"

#: What a file looks like to a stat: device, inode, size, modification time.
Signature = tuple[int, int, int, int]
#: The client's say on a newly compiled artifact before a source hands it over: raises
#: ArtifactError to refuse it like a bad one (the ordering rule: FlagClient._admit).
Admit = Callable[[FlagSet], None]


class FlagSourceError(ExternalError):
    """A look at a flag source failed; the message is safe to log.

    ``retry_after``: seconds the source asked for before the next look (HTTP ``429``/``503``).
    ``new``: a failure worth logging even within a failure streak (a new bad file or
    repository state, a file that just went missing). ``missing``: the source is absent
    rather than broken (a deleted file), said as a warning."""

    def __init__(self, message: str, *, retry_after: float | None = None, new: bool = False,
                 missing: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.new = new
        self.missing = missing


class FlagSource(Protocol):
    """Where a client's flags come from."""

    #: The source as messages name it (a URL without its query).
    name: str

    def load(self) -> FlagSet | None:
        """One look: the flags when they changed since the last good look, None when they
        did not. Raises :class:`FlagSourceError` when the look failed."""
        ...


#: Where a set's artifact is, beside the whole publication's ``flags.json``
#: (``runner/reconcile/publish.py``: ``sets/NAME/flags.json``).
SETS_DIR = "sets"


def _set_path(name: str) -> str:
    if not isinstance(name, str) or not SET_NAME.fullmatch(name):
        raise ValueError(f"set={name!r}: a set's name is lower-case letters, digits, _ and - "
                         "(as [tool.rollout.publish.sets] declares it), at most 64")
    return f"{SETS_DIR}/{name}/{SIGNED_ARTIFACT}"


def set_url(url: str, name: str) -> str:
    """The URL of set ``name``'s artifact, from the URL of the whole publication's
    ``flags.json`` (its last path segment replaced, the query kept) or of its folder (a
    URL ending in ``/``): ``https://h/x/flags.json`` -> ``https://h/x/sets/NAME/flags.json``.
    ValueError for a name no set can have."""
    parts = urllib.parse.urlsplit(url)
    head, _, _last = parts.path.rpartition("/")
    return urllib.parse.urlunsplit(parts._replace(path=f"{head}/{_set_path(name)}",
                                                  fragment=""))


#: In a URL or a path, where an environment's name goes (``ROLLOUT_ENVIRONMENT``):
#: ``https://flags-{environment}.example.com/flags.json``.
ENVIRONMENT_PLACEHOLDER = "{environment}"


def _environment_name(name: str) -> str:
    if not isinstance(name, str) or not ENVIRONMENT_NAME.fullmatch(name):
        raise ValueError(f"environment={name!r}: an environment's name is lower-case letters, "
                         "digits, _ and -, starting with a letter, at most 32 (as "
                         "[tool.rollout.environments] declares it)")
    return name


def environment_url(url: str, name: str) -> str:
    """The URL of environment ``name``'s artifact: ``{environment}`` in ``url`` replaced by
    the name; else the environment's folder beside the ``flags.json`` ``url`` names (or in
    the folder a URL ending in ``/`` names), as ``dir:public/NAME`` targets lay it out when
    the web server serves ``public/``: ``https://h/x/flags.json`` ->
    ``https://h/x/NAME/flags.json``. ValueError for a name no environment can have."""
    _environment_name(name)
    if ENVIRONMENT_PLACEHOLDER in url:
        return url.replace(ENVIRONMENT_PLACEHOLDER, name)
    parts = urllib.parse.urlsplit(url)
    head, _, _last = parts.path.rpartition("/")
    return urllib.parse.urlunsplit(parts._replace(path=f"{head}/{name}/{SIGNED_ARTIFACT}",
                                                  fragment=""))


def environment_file(path: Path, name: str) -> Path:
    """Environment ``name``'s artifact file: ``{environment}`` in ``path`` replaced, else
    ``NAME/flags.json`` in the folder ``path`` is or holds: ``/srv/flags/flags.json`` ->
    ``/srv/flags/NAME/flags.json``."""
    _environment_name(name)
    if ENVIRONMENT_PLACEHOLDER in str(path):
        return Path(str(path).replace(ENVIRONMENT_PLACEHOLDER, name))
    folder = path if path.is_dir() else path.parent
    return folder / name / SIGNED_ARTIFACT


def set_file(path: Path, name: str) -> Path:
    """Set ``name``'s artifact file, from the whole publication's ``flags.json`` or its
    folder: ``/srv/flags/flags.json`` -> ``/srv/flags/sets/NAME/flags.json``."""
    folder = path if path.is_dir() else path.parent
    return folder / _set_path(name)


def file_signature(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def load_artifact(path: Path, public_keys: Sequence[str] = ()) -> FlagSet:
    """Read and compile an artifact file; :class:`ArtifactError` when it is not usable:
    also when it is not a regular file (a folder, a FIFO, a device: never read, so never a
    hang) or larger than :data:`MAX_ARTIFACT_BYTES`, or, given ``public_keys``, when the
    signature beside it (:func:`signature_path`) is missing or does not sign its bytes."""
    try:
        data = read_regular(path, MAX_ARTIFACT_BYTES)
    except OSError as e:
        raise ArtifactError(f"{path}: cannot read: {e.strerror or e}") from e
    if len(data) > MAX_ARTIFACT_BYTES:
        raise ArtifactError(f"{path}: larger than {MAX_ARTIFACT_BYTES // (1024 * 1024)} MiB, "
                            "the most an artifact may be; not a rollout artifact?")
    if public_keys:
        _verify_file(path, data, public_keys)
    return FlagSet.from_bytes(data, str(path))


def signature_path(path: Path) -> Path:
    """The signature beside an artifact file: ``flags.sig`` beside ``flags.json``, else
    ``NAME.sig``."""
    from runner.signing import sig_name_for  # only clients with a public key

    return path.with_name(sig_name_for(path.name))


def _verify_file(path: Path, data: bytes, public_keys: Sequence[str]) -> None:
    from runner.signing import MAX_SIG_BYTES, SignatureError, verify_publication  # as above

    where = signature_path(path)
    try:
        sig = read_regular(where, MAX_SIG_BYTES + 1)
    except OSError as e:
        raise ArtifactError(f"{path}: refused: no signature ({where.name}: "
                            f"{e.strerror or e})") from None
    try:
        verify_publication(sig, {SIGNED_ARTIFACT: data}, public_keys)
    except SignatureError as e:
        raise ArtifactError(f"{path}: refused: {e}") from None


class FileSource:
    """An artifact file (``rollout build``'s output): read again only when a stat says it
    changed (inode, size or modification time); a bad file is refused once, not per look.

    :meth:`changed` is the cheap half of :meth:`load` (one stat, no read), for the
    evaluation path: the read and the compile happen on another thread."""

    def __init__(self, path: Path, public_keys: Sequence[str] = ()):
        self.path = path
        self.name = str(path)
        #: Given keys, only an artifact the signature beside it signs is loaded; the
        #: signature's stat joins the artifact's (a signature arriving after its artifact
        #: is a change)
        self.public_keys = tuple(public_keys)
        self._sig_path = signature_path(path) if self.public_keys else None
        self._signature: Any = None  # of the file last loaded
        self._refused: Any = None  # of the file last refused
        self._refusal = ""
        self._missing = False  # the file was missing at the last look (said once)
        self.admit: Admit | None = None

    def load_first(self) -> FlagSet:
        """The first load: the flags, or :class:`ArtifactError` (a client's constructor
        raises it, or says it once and serves defaults)."""
        self._missing = True  # until it loads: a missing file was said by that caller
        try:
            sig = self._stat()
        except OSError as e:
            raise ArtifactError(f"{self.path}: cannot read: {e.strerror or e}") from e
        flags = self._read()
        self._signature, self._refused, self._missing = sig, None, False
        return flags

    def _read(self) -> FlagSet:
        # one read: the bytes verified are the bytes compiled (a file replaced between two
        # reads could otherwise pass a check it never had)
        if self.public_keys:
            return load_artifact(self.path, self.public_keys)
        return load_artifact(self.path)

    def _stat(self) -> Any:
        """What a stat says of the file (and of its signature file, when verifying)."""
        sig = file_signature(self.path.stat())
        if self._sig_path is None:
            return sig
        try:
            return (sig, file_signature(self._sig_path.stat()))
        except OSError:
            return (sig, None)

    def _look(self) -> Any:
        """The file's signature when it is not the one last loaded; None when it is.
        :class:`FlagSourceError` when it is missing or the one last refused."""
        try:
            sig = self._stat()
        except OSError as e:
            new, self._missing = not self._missing, True
            raise FlagSourceError(f"{self.path}: {e.strerror or e}", new=new,
                                  missing=True) from None
        self._missing = False
        if sig == self._signature:
            return None
        if sig == self._refused:
            raise FlagSourceError(self._refusal)
        return sig

    def changed(self) -> bool:
        """One stat: True when the file is neither the one last loaded nor the one last
        refused (then :meth:`load` reads it); :class:`FlagSourceError` as :meth:`load`."""
        return self._look() is not None

    def load(self) -> FlagSet | None:
        sig = self._look()  # before reading: a change meanwhile is seen at the next look
        if sig is None:
            return None
        try:
            flags = self._read()
            if self.admit is not None:
                self.admit(flags)
        except ArtifactError as e:  # a new bad file (the one last refused did not get here)
            self._refused, self._refusal = sig, str(e)
            raise FlagSourceError(self._refusal, new=True) from None
        self._signature, self._refused = sig, None
        return flags


class HttpSource:
    """An artifact URL: conditional GETs (``runner/remote.py``); a changed body is compiled,
    and the same bytes again (no validators, a re-upload) are no change."""

    def __init__(self, http: UrlSource, public_keys: Sequence[str] = (),
                 sig_http: UrlSource | None = None):
        self.http = http
        self.name = http.shown
        self._body_hash: bytes | None = None
        self.admit: Admit | None = None
        #: Given keys: ``flags.sig`` beside the artifact, fetched (never conditionally)
        #: each time the artifact changed; an unchanged artifact (a 304) needs none
        self.public_keys = tuple(public_keys)
        self._sig_http = sig_http

    @classmethod
    def open(cls, url: str, *, timeout: float, bearer_token_env: str | None,
             public_keys: Sequence[str] = ()) -> HttpSource:
        """A source on ``url``; ``ValueError`` when it is not an http(s) URL with a host."""
        from runner.remote import UrlSource  # here: applications on a file never pay for HTTP

        http = UrlSource(url, timeout=timeout, max_bytes=MAX_ARTIFACT_BYTES,
                         bearer_token_env=bearer_token_env)
        sig_http = None
        if public_keys:
            from runner.signing import MAX_SIG_BYTES, sig_url_for  # only with a public key

            sig_http = UrlSource(sig_url_for(url), timeout=timeout, max_bytes=MAX_SIG_BYTES,
                                 bearer_token_env=bearer_token_env)
        return cls(http, public_keys, sig_http)

    @property
    def timeout(self) -> float:
        """The most one look may take (the whole request's deadline)."""
        return self.http.timeout

    def abort(self) -> None:
        """Cut a look in flight now (the client is being closed)."""
        self.http.abort()

    def load(self) -> FlagSet | None:
        from runner.remote import FetchError  # loaded already by open()

        try:
            got = self.http.get()
        except FetchError as e:
            raise FlagSourceError(str(e), retry_after=e.retry_after) from None
        if got is None:
            return None
        body, etag, last_modified = got
        digest = hashlib.sha256(body).digest()
        if digest == self._body_hash:  # the same bytes again (no validators, a re-upload)
            self.http.accept(etag, last_modified)
            return None
        if self._sig_http is not None:
            self._verify(body)
        try:
            flags = FlagSet.from_bytes(body, self.name)
            if self.admit is not None:
                self.admit(flags)
        except ArtifactError as e:
            raise FlagSourceError(str(e)) from None
        self._body_hash = digest
        self.http.accept(etag, last_modified)
        return flags

    def _verify(self, body: bytes) -> None:
        """Refuse ``body`` unless the signature served beside it signs its exact bytes."""
        from runner.remote import FetchError
        from runner.signing import SignatureError, verify_publication  # loaded by open()

        assert self._sig_http is not None
        self._sig_http.forget()  # never conditional: each new artifact, its signature now
        try:
            got = self._sig_http.get()
        except FetchError as e:
            raise FlagSourceError(f"{self.name}: refused: no signature ({e})",
                                  retry_after=e.retry_after) from None
        if got is None:  # a 304 to an unconditional request: nothing to verify with
            raise FlagSourceError(f"{self.name}: refused: no signature (304 from "
                                  f"{self._sig_http.shown})")
        try:
            verify_publication(got[0], {SIGNED_ARTIFACT: body}, self.public_keys)
        except SignatureError as e:
            raise FlagSourceError(f"{self.name}: refused: {e}") from None


def repo_signature(root: Path) -> tuple[Any, ...]:
    """What changes when a repository's flags may: pyproject.toml, and the names, inodes,
    sizes and modification times of the flags and rollouts folders' entries. A few stats."""
    from runner.load.layout import folders  # here: applications on a file never load YAML

    def sig(path: Path) -> Signature | None:
        try:
            return file_signature(path.stat())
        except OSError:
            return None

    out: list[Any] = [sig(root / "pyproject.toml")]
    for folder in dict.fromkeys(folders(root)):
        where = root / folder
        out.append((folder, sig(where)))
        try:
            with os.scandir(where) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    try:
                        out.append((entry.name, file_signature(entry.stat())))
                    except OSError:
                        out.append((entry.name, None))
        except OSError:
            pass
    return tuple(out)


def load_checkout(root: Path) -> FlagSet:
    """A checkout's flags, validated and resolved; :class:`runner.load.InvalidRepository`
    when it is not a valid repository."""
    from runner.load import load_repository  # here: applications on a file never load YAML

    return FlagSet.from_repository(load_repository(root))


class RepoSource:
    """A GitOps checkout: loaded (validated, resolved) again when its files change."""

    def __init__(self, root: Path, signature: tuple[Any, ...]):
        self.root = root
        self.name = str(root)
        self._signature: tuple[Any, ...] | None = signature  # of the state last loaded
        self._refused: tuple[Any, ...] | None = None
        self._refusal = ""

    def load(self) -> FlagSet | None:
        from runner.load import InvalidRepository  # loaded already by load_checkout

        sig = repo_signature(self.root)  # before reading: a change meanwhile is seen next time
        if sig == self._signature:
            return None
        if sig == self._refused:
            raise FlagSourceError(self._refusal)
        try:
            flags = load_checkout(self.root)
        except InvalidRepository as e:
            self._refused, self._refusal = sig, f"{self.root}: not a valid repository: {e}"
            raise FlagSourceError(self._refusal, new=True) from None
        except (OSError, ArtifactError) as e:
            self._refused, self._refusal = sig, f"{self.root}: cannot resolve: {e}"
            raise FlagSourceError(self._refusal, new=True) from None
        self._signature = sig
        return flags
