"""Repository URLs that may carry credentials: how commitbench shows them (`public_url`)
and how git is handed them (`credential_env`).

Separate from vcs.py (git behind an interface): pure string work, no GitPython, used
where a URL is stored or printed as well as where git fetches. vcs.py re-exports both,
its interface unchanged.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/@]*)@", re.IGNORECASE)
# A credential helper that answers git's `get` from its environment: the user:password
# of a URL reach git this way, never on a command line, in a config file or in the
# clone's remote URL (git stores the URL it cloned from as `origin`).
_ENV_HELPER = (
    '!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" '
    '"$COMMITBENCH_GIT_USERNAME" "$COMMITBENCH_GIT_PASSWORD"; }; f'
)


def public_url(url: str) -> str:
    """`url` without its `user:password@`: how commitbench stores, prints and logs a
    repository (tokens in fleet URLs must not reach the jobs table Grafana can read)."""
    return _USERINFO.sub(r"\1", url)


def credential_env(url: str) -> dict[str, str]:
    """Environment for git that hands it the credentials of `url` (empty without any),
    through `_ENV_HELPER`; with none, git's own credential helpers are asked."""
    found = _USERINFO.match(url)
    if found is None:
        return {}
    user, _, password = found.group(2).partition(":")
    return {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": _ENV_HELPER,
        "COMMITBENCH_GIT_USERNAME": unquote(user),
        "COMMITBENCH_GIT_PASSWORD": unquote(password),
    }
