"""``rollout init --environments A,B``: the scaffold's files for a repository with environments.

The single-environment templates stay the source (and ``rollout init`` without the option
writes them byte for byte); this rewrites the rendered texts that environments change:

- pyproject.toml: ``[tool.rollout.environments.NAME]`` per environment, in promotion order,
  each with its own publish target (the branch ``rollout-published-NAME``) and its own
  metric source: Prometheus at the URL and token of the variables ``PROMETHEUS_URL_NAME`` and
  ``PROMETHEUS_TOKEN_NAME`` (one Prometheus per environment, the queries unchanged), or the
  files ``metrics/NAME/FLAG.json``;
- the plan: ``promote_after: 1h`` (the soak before each later environment starts) and an
  ``environments:`` block whose last environment asks a person's approval of its first step
  above 0;
- the workflows: ``advance --publish`` with no target (each environment to its own), each
  environment's metric variables, the published URLs per environment; the control workflow
  asks which environment.

Every rewrite checks the text it replaces is there (a template edited without this module
fails the tests, never a user's repository).
"""

from __future__ import annotations

import re

#: An environment's name, as ``[tool.rollout.environments]`` takes it (schemas/config.schema.json).
NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
#: The first step above 0 that the last environment's plan has approved by a person.
APPROVED_STEPS = "[0, {percentage: 5, approval: true}, 10, 25, 50, 75, 100]"


def parse_environments(value: str) -> tuple[str, ...]:
    """``--environments``'s value as names in promotion order; ValueError saying why not."""
    names = tuple(n.strip() for n in value.split(","))
    for n in names:
        if not NAME.fullmatch(n):
            raise ValueError(f"{n!r} is not an environment name (a lowercase letter, then up to "
                             "31 lowercase letters, digits, '_' or '-')")
    seen: dict[str, str] = {}
    for n in names:
        var = variable_suffix(n)
        if var in seen:
            twice = "named twice" if seen[var] == n else f"and {seen[var]!r} share {var}"
            raise ValueError(f"{n!r} {twice}")
        seen[var] = n
    return names


def variable_suffix(name: str) -> str:
    """The suffix of an environment's variables: ``pre-prod`` -> ``PRE_PROD``."""
    return name.upper().replace("-", "_")


def _replace(template: str, text: str, old: str, new: str) -> str:
    if old not in text:
        raise ValueError(f"{template}: {old.strip()[:60]!r} not found to rewrite for environments")
    return text.replace(old, new)


def pyproject(text: str, metrics: str, names: tuple[str, ...]) -> str:
    """The rendered pyproject.toml: ``[tool.rollout.metrics]`` becomes each environment's."""
    head, sep, source = text.partition("[tool.rollout.metrics]\n")
    if not sep:
        raise ValueError("pyproject.toml: no [tool.rollout.metrics] table to rewrite")
    if metrics == "prometheus":
        head = _replace("pyproject.toml", head, "from the environment variable PROMETHEUS_URL "
                        "and its bearer token from PROMETHEUS_TOKEN\n",
                        "from the environment variable PROMETHEUS_URL_<ENVIRONMENT> and its "
                        "bearer token from\n# PROMETHEUS_TOKEN_<ENVIRONMENT>\n")
        head = _replace("pyproject.toml", head, "(the advance workflow sets both from the "
                        "repository's variable and secret of those\n# names; no URL or token "
                        "in git).",
                        "(the advance workflow sets them from the repository's variables and "
                        "secrets of those\n# names; no URL or token in git): one Prometheus "
                        "per environment. One Prometheus for all: give\n# each the same URL and "
                        "add an environment label to its queries (flag=\"{{ flag }}\",\n# "
                        "environment=\"staging\").")
    else:
        head = _replace("pyproject.toml", head, "# Where gate values come from. A JSON file "
                        "per flag", "# Where gate values come from. A JSON file per environment "
                        "and flag")
    out = [head.rstrip("\n") + "\n",
           "\n# The environments a flag is promoted through, in this order (docs/environments.md):"
           "\n# each with its own metric source and the branch its served flags are published to.\n"]
    for name in names:
        suffix = variable_suffix(name)
        body = source
        if metrics == "prometheus":
            body = _replace("pyproject.toml", body, '"PROMETHEUS_URL"', f'"PROMETHEUS_URL_{suffix}"')
            body = _replace("pyproject.toml", body, '"PROMETHEUS_TOKEN"',
                            f'"PROMETHEUS_TOKEN_{suffix}"')
        else:
            body = _replace("pyproject.toml", body, '"metrics/{{ flag }}.json"',
                            f'"metrics/{name}/{{{{ flag }}}}.json"')
        body = body.replace("[tool.rollout.metrics.", f"[tool.rollout.environments.{name}.metrics.")
        out.append(f"\n[tool.rollout.environments.{name}]\n"
                   f'publish = ["branch:rollout-published-{name}"]\n'
                   f"\n[tool.rollout.environments.{name}.metrics]\n{body}")
    return "".join(out)


def plan(text: str, names: tuple[str, ...]) -> str:
    """The rendered plan: the soak and the ``environments:`` block after ``on_failure``."""
    last = names[-1]
    block = "".join(f"  {n}: {{}}\n" for n in names[:-1])
    block += (f"  {last}:\n"
              f"    # a person approves its first step (`rollout approve new_checkout --env {last}`)\n"
              "    strategy: custom\n"
              f"    steps: {APPROVED_STEPS}\n")
    order = " -> ".join(names)
    return _replace("rollout.yaml", text, "on_failure: rollback\n",
                    "on_failure: rollback\n"
                    f"# The environments it runs in, in order ({order}): each starts only once "
                    "the one\n# before it has completed the plan and stayed healthy for "
                    "`promote_after`; a rollback in one\n# rejects this version of the plan for "
                    "the later ones (docs/environments.md).\n"
                    "promote_after: 1h\n"
                    f"environments:\n{block}")


def _metric_env(names: tuple[str, ...]) -> str:
    lines = []
    for n in names:
        s = variable_suffix(n)
        lines.append(f"          PROMETHEUS_URL_{s}: ${{{{ vars.PROMETHEUS_URL_{s} || "
                     f"secrets.PROMETHEUS_URL_{s} }}}}\n"
                     f"          PROMETHEUS_TOKEN_{s}: ${{{{ secrets.PROMETHEUS_TOKEN_{s} }}}}\n")
    return "".join(lines)


_METRIC_ENV = ("          PROMETHEUS_URL: ${{ vars.PROMETHEUS_URL || secrets.PROMETHEUS_URL }}\n"
               "          PROMETHEUS_TOKEN: ${{ secrets.PROMETHEUS_TOKEN }}\n")
_METRIC_COMMENT = (
    "          # the metrics source of [tool.rollout.metrics] (url_env, bearer_token_env): the\n"
    "          # Prometheus URL from the repository variable PROMETHEUS_URL (Settings > Secrets and\n"
    "          # variables > Actions; a secret of that name works too) and its bearer token from the\n"
    "          # secret PROMETHEUS_TOKEN\n")
_PUBLISHED = (
    '          base="https://raw.githubusercontent.com/${GITHUB_REPOSITORY}/rollout-published"\n'
    "          {\n"
    '            echo ""\n'
    '            echo "Published flags (branch \\`rollout-published\\`; a private repository\'s '
    'raw URLs need a token):"\n'
    '            echo ""\n'
    '            echo "- applications (FlagClient): ${base}/flags.json"\n'
    '            echo "- flagd: ${base}/flags.flagd.json"\n'
    '          } >> "$GITHUB_STEP_SUMMARY"\n')


def _published(names: tuple[str, ...]) -> str:
    lines = ['          base="https://raw.githubusercontent.com/${GITHUB_REPOSITORY}"\n',
             "          {\n", '            echo ""\n',
             "            echo \"Published flags, a branch per environment (a private "
             "repository's raw URLs need a token):\"\n",
             '            echo ""\n']
    for n in names:
        lines.append(f'            echo "- {n}: ${{base}}/rollout-published-{n}/flags.json '
                     f'(flagd: flags.flagd.json)"\n')
    lines.append('          } >> "$GITHUB_STEP_SUMMARY"\n')
    return "".join(lines)


def workflow(template: str, text: str, metrics: str, names: tuple[str, ...]) -> str:
    """A rendered workflow for a repository with environments ``names``."""
    if template.endswith("advance.yml"):
        if metrics == "prometheus":
            text = _replace(template, text, _METRIC_COMMENT, (
                "          # each environment's metric source ([tool.rollout.environments.NAME."
                "metrics]): its\n          # Prometheus URL from the repository variable "
                "PROMETHEUS_URL_<ENVIRONMENT> (Settings >\n          # Secrets and variables > "
                "Actions; a secret of that name works too) and its bearer token\n"
                "          # from the secret PROMETHEUS_TOKEN_<ENVIRONMENT>\n"))
            text = _replace(template, text, _METRIC_ENV, _metric_env(names))
        text = _replace(template, text, "          # the served flags (flags.json, "
                        "flags.flagd.json) go to the branch rollout-published,\n"
                        "          # one commit per served change, pushed with the same token\n",
                        "          # each environment's served flags (flags.json, "
                        "flags.flagd.json) go to its own publish\n          # target "
                        "(pyproject.toml: the branch rollout-published-<ENVIRONMENT>), one "
                        "commit per\n          # served change, pushed with the same token\n")
        text = text.replace("rollout advance --push --publish branch:rollout-published ",
                            "rollout advance --push --publish ")
        text = text.replace("rollout publish --push --to branch:rollout-published\n",
                            "rollout publish --push\n")
        text = text.replace("# push the served flags to the branch rollout-published,",
                            "# push the served flags to each environment's branch,")
        return _replace(template, text, _PUBLISHED, _published(names))
    if template.endswith("control.yml"):
        options = ", ".join(names)
        text = _replace(template, text, "        options: [pause, resume, rollback, retry, "
                        "approve]\n",
                        "        options: [pause, resume, rollback, retry, approve]\n"
                        "      environment:\n"
                        '        description: "The environment whose rollout it is"\n'
                        "        required: true\n"
                        "        type: choice\n"
                        f"        options: [{options}]\n")
        text = _replace(template, text, "          ACTION: ${{ inputs.action }}\n",
                        "          ACTION: ${{ inputs.action }}\n"
                        "          ENVIRONMENT: ${{ inputs.environment }}\n")
        text = _replace(template, text,
                        'rollout "$ACTION" --push --publish branch:rollout-published \\\n',
                        'rollout "$ACTION" --push --env "$ENVIRONMENT" --publish \\\n')
        text = _replace(template, text, "              rollout approve --push \\\n",
                        '              rollout approve --push --env "$ENVIRONMENT" \\\n')
        return _replace(template, text, "# published at once (a push with this token does "
                        "not start advance.yml); a\n",
                        "# published at once to the environment's own target (a push with "
                        "this token does not\n              # start advance.yml); a\n")
    return text
