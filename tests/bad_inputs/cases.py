"""The bad-input corpus: each case is a small change to a copy of the example repository.

A case writes files (text or bytes) over the example repository, optionally deletes some, and
names the one problem a user must see: the file, the line, the field and words of the
message. ``tests/test_bad_inputs.py`` runs ``rollout validate`` on each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

#: A minimal valid flag; its own lines are 1-5, a case's extra lines start at line 6.
HEAD = """\
# yaml-language-server: $schema=../schemas/flag.schema.json
key: {key}
description: A flag made for a test.
owner: test-team
risk: low
"""
PLAN_HEAD = """\
# yaml-language-server: $schema=../schemas/rollout.schema.json
flag: {flag}
"""


def flag(extra: str = "", key: str = "new_flag") -> str:
    return HEAD.format(key=key) + extra


def plan(extra: str, flag_key: str = "new_flag") -> str:
    return PLAN_HEAD.format(flag=flag_key) + extra


ALIAS_BOMB = "\n".join(
    [flag(), 'lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
) + "\n"


#: A plan whose gates pass review, opening a compare: block at line 7.
COMPARE = "strategy: safe\ngates:\n  error_rate: 1.0\n  request_count: 100\ncompare:\n"


#: Declares two environments, staging then production, in the example's pyproject.toml.
ENVS = (("pyproject.toml", 'path = "logs/metrics.json"',
         'path = "logs/metrics.json"\n\n[tool.rollout.environments.staging]\n\n'
         '[tool.rollout.environments.production]'),)


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str | bytes]
    file: str  # the file the problem is reported in
    line: int
    field: str  # "" for problems of the whole file
    words: str  # part of the message
    #: (file, old, new): replace text in a file of the example repository
    edit: tuple[tuple[str, str, str], ...] = ()
    #: when set, the expected line is the first line of ``file`` containing this text (for
    #: files such as pyproject.toml whose other lines may change)
    line_of: str = ""
    #: (file, kind, target): entries that are no text: kind "fifo", "socket" or "symlink"
    #: (to ``target``)
    special: tuple[tuple[str, str, str], ...] = ()


F = "flags/new_flag.yaml"
P = "rollouts/new_flag.yaml"
S = "rollouts/phase_4_deployment.state.json"


@cache
def _digest() -> str:
    from runner.load import load_repository

    return load_repository(Path(__file__).resolve().parents[2]).plans["phase_4_deployment"].digest


def state(**fields: Any) -> str:
    """A state of the example plan (safe: 0, 5, 10, 25, 50, 75, 100) as the runner writes
    it, at step 2 (10%) unless ``fields`` say otherwise; a field set to ... is left out."""
    base: dict[str, Any] = {
        "flag": "phase_4_deployment", "plan": "phase_4_deployment", "phase": "progressing",
        "step": 2, "current_percentage": 10, "started_at": "2026-01-15T12:00:00Z",
        "step_started_at": "2026-01-15T12:10:00Z", "last_evaluated_at": None,
        "plan_digest": _digest(), "consecutive_failures": 0, "consecutive_inconclusive": 0,
        "consecutive_errors": 0, "last_gates": [], "reason": "a test state"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}, indent=2,
                      sort_keys=True) + "\n"


HEX = "0x" + "f" * 5000

CASES: list[Case] = [
    # --- YAML itself -------------------------------------------------------------------
    Case("syntax_unclosed_bracket", {F: flag("requires: [phase_4_deployment\nenabled: true\n")},
         F, 7, "", "expected ',' or ']'"),
    Case("syntax_bad_indentation", {F: flag("targeting:\n  users: [a]\n    regions: [b]\n")},
         F, 8, "", "did not find expected key"),
    Case("syntax_tab_indentation", {F: flag("targeting:\n\tusers: [a]\n")},
         F, 7, "", "a tab: indent YAML with spaces"),
    Case("duplicate_top_level_key", {F: flag("risk: high\n")}, F, 6, "risk",
         "duplicate key (first at line 5)"),
    Case("duplicate_nested_key", {F: flag("targeting:\n  users: [a]\n  users: [b]\n")},
         F, 8, "targeting.users", "duplicate key (first at line 7)"),
    Case("alias_bomb", {F: ALIAS_BOMB}, F, 12, "lol5", "alias bomb"),
    Case("recursive_alias", {F: flag("targeting: &t\n  rules: [*t]\n")}, F, 6, "targeting",
         "recursive alias"),
    Case("python_object_tag", {F: flag("bucket_by: !!python/object/apply:os.system [echo pwned]\n")},
         F, 6, "bucket_by", "the tag !!python/object/apply:os.system is not allowed"),
    Case("python_name_tag", {F: flag("env_override: !!python/name:os.system\n")},
         F, 6, "env_override", "the tag !!python/name:os.system is not allowed"),
    Case("binary_tag", {F: flag("owner_photo: !!binary aGVsbG8=\n")},
         F, 6, "owner_photo", "the tag !!binary is not allowed"),
    Case("binary_file", {F: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"}, F, 1, "", "binary file"),
    Case("empty_file", {F: ""}, F, 1, "", "empty file"),
    Case("comments_only_file", {F: "# yaml-language-server: $schema=../schemas/flag.schema.json\n"},
         F, 1, "", "empty file"),
    Case("two_documents", {F: flag("---\n" + flag())}, F, 6, "", "more than one YAML document"),
    Case("over_size_file", {F: flag("description_long: " + "x" * (1 << 20) + "\n")},
         F, 1, "", f"file is {len(flag()) + 18 + (1 << 20) + 1} bytes, over the limit of 1048576"),
    Case("not_utf8", {F: flag().encode() + b"owner_name: Andr\xe9\n"}, F, 6, "", "not UTF-8"),
    # at the line that nests (PyYAML >= 6.0.4 stops deep nesting itself, older ones recurse)
    Case("nested_too_deeply", {F: flag("bucket_by: " + "[" * 5000 + "]" * 5000 + "\n")}, F, 1, "",
         "nested too deeply", line_of="bucket_by:"),
    Case("number_too_long", {F: flag("percentage: " + "9" * 5000 + "\n")}, F, 6, "percentage",
         "99999999999999999999…: a number of 5000 characters, too long (at most 64)"),
    Case("top_level_list", {F: "- key: new_flag\n"}, F, 1, "", "expected a YAML mapping"),
    Case("top_level_scalar", {F: "new_flag\n"}, F, 1, "", "expected a YAML mapping"),
    Case("number_as_key", {F: flag("variants:\n  1: true\n  0: false\n")},
         F, 7, "variants.1", "a key must be a name"),
    Case("nan_percentage", {F: flag("percentage: .nan\n")}, F, 6, "percentage", "not a finite number"),
    # numbers: finite, 64-bit integers, at most 64 characters, in every numeric field of
    # every kind of file; the line echoes 20 characters of the number, never all of it
    Case("number_hex_digits", {F: flag(f"percentage: {HEX}\n")}, F, 6, "percentage",
         "0xffffffffffffffffff…: a number of 5002 characters, too long (at most 64)"),
    Case("number_inf_percentage", {F: flag("percentage: .inf\n")}, F, 6, "percentage",
         ".inf: not a finite number"),
    Case("number_overflowing_float", {F: flag("percentage: 1e999\n")}, F, 6, "percentage",
         "1e999: not a finite number"),
    Case("number_long_float", {F: flag("percentage: " + "1" * 100 + ".5\n")}, F, 6, "percentage",
         "a number of 102 characters, too long (at most 64)"),
    Case("number_beyond_64_bits", {F: flag("variants: {off: 0, on: 99999999999999999999}\n")},
         F, 6, "variants.on", "99999999999999999999: out of range (integers are 64-bit"),
    Case("number_hex_in_a_plan", {F: flag(), P: plan(f"strategy: safe\nfailure_limit: {HEX}\n")},
         P, 4, "failure_limit", "a number of 5002 characters, too long"),
    Case("number_overflowing_wait", {F: flag(), P: plan("strategy: safe\nwait: 1e999\n")},
         P, 4, "wait", "1e999: not a finite number"),
    Case("duration_of_huge_seconds", {F: flag(), P: plan("strategy: safe\nwait: 1e308\n")},
         P, 4, "wait", "1e+308 is longer than the limit of 366d"),
    Case("duration_of_huge_days",
         {F: flag(), P: plan("strategy: custom\nsteps:\n  - 0\n"
                             "  - {percentage: 100, wait: 99999999999999999d}\n")},
         P, 6, "steps[1].wait", "'99999999999999999d' is longer than the limit of 366d"),
    Case("duplicate_merge_key", {F: flag("targeting:\n  <<: {users: [a]}\n  <<: {regions: [b]}\n")},
         F, 8, "targeting.<<", "duplicate merge key << (first at line 7)"),
    # values are echoed capped (80 characters) and escaped: one problem is one short line
    Case("long_value_is_capped", {F: flag().replace("risk: low", "risk: " + "x" * 100_000)},
         F, 5, "risk", "'" + "x" * 79 + "…' is not one of low, medium, high"),
    Case("control_characters_are_escaped",
         {F: flag().replace("risk: low", 'risk: "low\\n::error::pwned"')},
         F, 5, "risk", "'low\\n::error::pwned' is not one of"),
    Case("article_before_a_vowel", {F: flag("variants: [1]\n")}, F, 6, "variants",
         "[1] is an array, expected object"),
    # --- the flag schema ---------------------------------------------------------------
    Case("missing_owner", {F: flag().replace("owner: test-team\n", "")}, F, 2, "owner",
         "required field is missing"),
    Case("unknown_field", {F: flag("rollout_percent: 10\n")}, F, 6, "rollout_percent", "unknown field"),
    Case("yaml11_yes_is_not_a_boolean", {F: flag("enabled: yes\n")}, F, 6, "enabled",
         "'yes' is a string, expected boolean"),
    Case("risk_not_in_enum", {F: flag().replace("risk: low", "risk: critical")}, F, 5, "risk",
         "'critical' is not one of low, medium, high"),
    Case("key_not_snake_case", {F: flag(key="New-Flag")}, F, 2, "key", "lower snake case"),
    Case("percentage_over_100", {F: flag("percentage: 150\n")}, F, 6, "percentage",
         "150 is greater than the maximum of 100"),
    Case("percentage_negative", {F: flag("percentage: -5\n")}, F, 6, "percentage",
         "-5 is less than the minimum of 0"),
    Case("percentage_as_string", {F: flag('percentage: "50%"\n')}, F, 6, "percentage",
         "'50%' is a string, expected number or object"),
    Case("percentage_too_fine", {F: flag("percentage: 33.333\n")}, F, 6, "percentage",
         "finer resolution than 0.01"),
    Case("split_not_100", {F: flag("variants: {a: x, b: y, c: z}\ndefault_variant: a\n"
                                   "rollout_variant: b\npercentage: {a: 50, b: 30}\n")},
         F, 9, "percentage", "shares add up to 80, not 100"),
    Case("targeting_percentage_over_100",
         {F: flag("targeting:\n  users: [a]\n  rules:\n    - attribute: plan\n      in: [pro]\n"
                  "      variant: on\n      percentage: 150\n")},
         F, 12, "targeting.rules[0].percentage", "unknown field"),
    Case("default_variant_missing", {F: flag("variants: {red: '#f00', blue: '#00f'}\n"
                                             "default_variant: green\nrollout_variant: red\n")},
         F, 7, "default_variant", "'green' is not one of the flag's variants"),
    Case("yaml11_no_is_not_off", {F: flag("default_variant: no\n")}, F, 6, "default_variant",
         "'no' is not one of the flag's variants ['off', 'on']"),
    Case("rollout_variant_missing", {F: flag("rollout_variant: enabled\n")}, F, 6, "rollout_variant",
         "'enabled' is not one of"),
    Case("variants_of_two_types", {F: flag("variants:\n  off: 0\n  on: 'fast'\n")}, F, 8, "variants.on",
         "is a string but the flag's variants are numbers"),
    Case("variant_bad_name", {F: flag("variants:\n  'has space': true\n  off: false\n")},
         F, 6, "variants", "'has space' is not a variant name"),
    Case("rule_without_operator", {F: flag("targeting:\n  rules:\n    - attribute: plan\n"
                                           "      variant: on\n")},
         F, 8, "targeting.rules[0]", "needs one of in, not_in, equals"),
    Case("rule_with_two_operators", {F: flag("targeting:\n  rules:\n    - attribute: plan\n"
                                             "      in: [pro]\n      equals: pro\n      variant: on\n")},
         F, 8, "targeting.rules[0]", "give only one of in, equals"),
    Case("rule_unknown_variant", {F: flag("targeting:\n  rules:\n    - attribute: plan\n"
                                          "      in: [pro]\n      variant: beta\n")},
         F, 10, "targeting.rules[0].variant", "variant 'beta' is not one of"),
    Case("canary_user_twice", {F: flag("targeting:\n  users: [alice, bob, alice]\n")},
         F, 7, "targeting.users", "'alice' is listed more than once"),
    Case("env_override_not_a_variable", {F: flag("env_override: new-flag\n")}, F, 6, "env_override",
         "not an environment variable name"),
    Case("key_differs_from_file_name", {F: flag(key="other_flag")}, F, 2, "key",
         "differs from the file name 'new_flag'"),
    Case("same_key_yaml_and_yml", {F: flag(), "flags/new_flag.yml": flag()}, "flags/new_flag.yml", 2, "key",
         "also defined in flags/new_flag.yaml"),
    # --- references between flags ------------------------------------------------------
    Case("requires_unknown_flag", {F: flag("requires:\n  - phase_5_deployment\n")}, F, 7, "requires[0]",
         "requires unknown flag 'phase_5_deployment'"),
    Case("requires_unknown_variant", {F: flag("requires:\n  - flag: phase_4_deployment\n"
                                              "    variant: maybe\n")},
         F, 8, "requires[0].variant", "'phase_4_deployment' has no variant 'maybe'"),
    Case("requires_twice", {F: flag("requires:\n  - phase_4_deployment\n  - flag: phase_4_deployment\n")},
         F, 8, "requires[1]", "'phase_4_deployment' is already required (requires[0])"),
    Case("env_override_taken", {F: flag("env_override: PHASE_4_DEPLOYMENT\n")}, F, 6, "env_override",
         "PHASE_4_DEPLOYMENT also overrides the flag 'phase_4_deployment'"),
    Case("implicit_default_not_a_variant", {F: flag("variants: {a: 1, b: 2}\nrollout_variant: b\n")},
         F, 6, "variants", "default_variant is not given and its default 'off' is not one of"),
    Case("requires_itself", {F: flag("requires: [new_flag]\n")}, F, 6, "requires[0]",
         "cannot require itself"),
    Case("dependency_cycle", {F: flag("requires: [other_flag]\n"),
                              "flags/other_flag.yaml": flag("requires:\n  - new_flag\n", key="other_flag")},
         F, 6, "requires[0]", "dependency cycle: new_flag -> other_flag -> new_flag"),
    Case("static_percentage_on_planned_flag",
         {"flags/phase_4_deployment.yaml": flag("percentage: 50\n", key="phase_4_deployment")},
         "flags/phase_4_deployment.yaml", 6, "percentage",
         "driven by the rollout plan rollouts/phase_4_deployment.yaml"),
    # --- rollout plans -----------------------------------------------------------------
    Case("plan_for_missing_flag", {P: plan("strategy: safe\n")}, P, 2, "flag", "no flag 'new_flag'"),
    Case("two_plans_for_one_flag",
         {"rollouts/phase_4_fast.yaml": plan("strategy: fast\n", "phase_4_deployment")},
         "rollouts/phase_4_fast.yaml", 2, "flag",
         "also has the rollout plan rollouts/phase_4_deployment.yaml"),
    Case("rollout_changes_nothing", {F: flag("default_variant: on\n"), P: plan("strategy: safe\n")},
         P, 2, "flag", "the rollout would change nothing"),
    Case("plan_missing_strategy", {F: flag(), P: plan("wait: 5m\n")}, P, 2, "strategy",
         "required field is missing"),
    Case("plan_unknown_strategy", {F: flag(), P: plan("strategy: yolo\n")}, P, 3, "strategy",
         "'yolo' is not one of safe, fast, instant, custom"),
    Case("compare_confidence_of_one_or_more", {F: flag(), P: plan(COMPARE + "  error_rate: "
         "{max_increase: 0.5}\n  confidence: 1.5\n")}, P, 9, "compare.confidence",
         "1.5 is greater than or equal to the maximum of 1"),
    Case("compare_slow_rate_without_objective", {F: flag(), P: plan(COMPARE + "  slow_rate: "
         "{max_increase: 1}\n")}, P, 8, "compare.slow_rate.objective_ms",
         "required field is missing"),
    Case("compare_margin_not_a_number", {F: flag(), P: plan(COMPARE + "  error_rate: "
         "{max_increase: lots}\n")}, P, 8, "compare.error_rate.max_increase",
         "'lots' is a string, expected number"),
    Case("compare_without_a_metric", {F: flag(), P: plan(COMPARE + "  confidence: 0.9\n")},
         P, 7, "compare", "needs one of error_rate, slow_rate"),
    Case("compare_with_prometheus_but_no_cohort_query",
         {F: flag(), P: plan(COMPARE + "  error_rate: {max_increase: 0.5}\nmetrics:\n"
                             "  type: prometheus\n  url: http://127.0.0.1:9\n  queries:\n"
                             "    error_rate: 'vector(0)'\n    request_count: 'vector(1000)'\n"
                             "    cohort_requests: 'sum(x{variant=\"{{ variant }}\"})'\n")},
         P, 8, "compare.error_rate", "no cohort_errors query"),
    Case("steps_not_increasing", {F: flag(), P: plan("strategy: custom\nsteps: [0, 10, 50, 25, 100]\n")},
         P, 4, "steps[3]", "25 does not come after 50"),
    Case("steps_unordered_with_schema_error",
         {F: flag(), P: plan("strategy: custom\nsteps: [0, 50, 25, 100]\nwait: soon\n")},
         P, 4, "steps[2]", "25 does not come after 50"),
    Case("steps_not_ending_at_100", {F: flag(), P: plan("strategy: custom\nsteps:\n  - 0\n  - 10\n  - 50\n")},
         P, 7, "steps[2]", "the last step is 50, it must be 100"),
    Case("step_over_100", {F: flag(), P: plan("strategy: custom\nsteps:\n  - 0\n  - 120\n")},
         P, 6, "steps[1]", "120 is greater than the maximum of 100"),
    Case("step_object_over_100", {F: flag(), P: plan("strategy: custom\nsteps:\n  - 0\n"
                                                      "  - percentage: 101\n    wait: 1h\n")},
         P, 6, "steps[1].percentage", "101 is greater than the maximum of 100"),
    Case("custom_without_steps", {F: flag(), P: plan("strategy: custom\n")}, P, 3, "strategy",
         "custom needs its own steps"),
    Case("safe_with_other_steps", {F: flag(), P: plan("strategy: safe\nsteps: [0, 50, 100]\n")},
         P, 4, "steps", "use strategy: custom"),
    Case("wait_not_a_duration", {F: flag(), P: plan("strategy: safe\nwait: 5 minutes\n")}, P, 4, "wait",
         "'5 minutes' is not a duration"),
    Case("step_wait_not_a_duration", {F: flag(), P: plan("strategy: custom\nsteps:\n  - 0\n"
                                                          "  - {percentage: 100, wait: tomorrow}\n")},
         P, 6, "steps[1].wait", "'tomorrow' is not a duration"),
    Case("instant_on_high_risk_flag", {F: flag().replace("risk: low", "risk: high"),
                                       P: plan("strategy: instant\n")},
         P, 3, "strategy", "set accept_risk: true"),
    Case("unknown_gate", {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1\n  latency: 500\n")},
         P, 6, "gates.latency", "unknown field"),
    Case("negative_gate", {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: -1\n")},
         P, 5, "gates.error_rate", "-1 is less than the minimum of 0"),
    Case("request_count_not_integer", {F: flag(), P: plan("strategy: safe\ngates:\n  request_count: 10.5\n")},
         P, 5, "gates.request_count", "10.5 is a number, expected integer"),
    Case("custom_gate_without_limit", {F: flag(), P: plan("strategy: safe\ngates:\n  custom:\n"
                                                           "    queue_depth:\n      query: queue\n")},
         P, 6, "gates.custom.queue_depth", "needs one of max, min"),
    Case("prometheus_url_not_http", {F: flag(), P: plan("strategy: safe\nmetrics:\n  type: prometheus\n"
                                                         "  url: ftp://prometheus:9090\n")},
         P, 6, "metrics.url", "not an http:// or https:// URL"),
    Case("prometheus_without_query", {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1\n"
                                                          "metrics:\n  type: prometheus\n"
                                                          "  url: http://127.0.0.1:9090\n")},
         P, 5, "gates.error_rate", "no query for error_rate"),
    Case("confidence_on_a_latency_gate",
         {F: flag(), P: plan("strategy: safe\ngates:\n  p95_latency_ms: {max: 500, confidence: 0.95}\n")},
         P, 5, "gates.p95_latency_ms.confidence", "only error_rate takes a confidence"),
    Case("confidence_above_one",
         {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: {max: 1, confidence: 95}\n")},
         P, 5, "gates.error_rate.confidence", "95 is greater than or equal to the maximum of 1"),
    Case("confidence_at_a_zero_threshold",
         {F: flag(), P: plan("strategy: safe\ngates:\n  request_count: 100\n"
                             "  error_rate:\n    max: 0\n    confidence: 0.95\n")},
         P, 7, "gates.error_rate.max", "must lie strictly between 0 and 100"),
    Case("confidence_in_a_step_at_100",
         {F: flag(), P: plan("strategy: custom\ngates:\n  error_rate: 1\nsteps:\n  - 0\n"
                             "  - {percentage: 100, gates: {error_rate: {max: 100, confidence: 0.9}}}\n")},
         P, 8, "steps[1].gates.error_rate.max", "must lie strictly between 0 and 100"),
    Case("confidence_without_step_queries",
         {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: {max: 1, confidence: 0.95}\n"
                             "metrics:\n  type: prometheus\n  url: http://127.0.0.1:9090\n"
                             "  queries:\n    step_requests: sum(x)\n")},
         P, 5, "gates.error_rate.confidence", "no query for step_errors: a gate with a confidence"),
    Case("query_template_error", {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1\n"
                                                      "metrics:\n  type: prometheus\n"
                                                      "  url: http://127.0.0.1:9090\n  queries:\n"
                                                      "    error_rate: rate(x{flag=\"{{ flag \"}[5m])\n")},
         P, 10, "metrics.queries.error_rate", "template error"),
    Case("metrics_type_unknown", {F: flag(), P: plan("strategy: safe\nmetrics:\n  type: datadog\n")},
         P, 5, "metrics.type", "'datadog' is not one of file, prometheus, command"),
    Case("start_at_not_a_time", {F: flag(), P: plan("strategy: safe\nstart_at: next monday\n")},
         P, 4, "start_at", "not an ISO 8601 date-time"),
    Case("on_failure_unknown", {F: flag(), P: plan("strategy: safe\non_failure: panic\n")},
         P, 4, "on_failure", "'panic' is not one of rollback, pause"),
    Case("failure_limit_zero", {F: flag(), P: plan("strategy: safe\nfailure_limit: 0\n")},
         P, 4, "failure_limit", "0 is less than the minimum of 1"),
    # --- rollout state (machine-owned, but a human may edit it) ----------------------------
    Case("state_not_json", {"rollouts/phase_4_deployment.state.json": '{\n  "flag": "phase_4_deployment",\n'},
         "rollouts/phase_4_deployment.state.json", 3, "", "unreadable rollout state"),
    Case("state_unknown_phase", {"rollouts/phase_4_deployment.state.json":
                                 '{\n  "flag": "phase_4_deployment",\n  "phase": "sideways"\n}\n'},
         "rollouts/phase_4_deployment.state.json", 3, "phase", "'sideways' is not one of"),
    # one state per rollout, and a state that means what it says (at a step of its plan, at
    # that step's percentage)
    Case("state_second_file_for_a_flag",
         {S: state(), "rollouts/zzz.state.json": state(plan="zzz", current_percentage=75, step=5)},
         "rollouts/zzz.state.json", 0, "flag",
         "'phase_4_deployment' is rolled out by rollouts/phase_4_deployment.yaml, whose state is "
         "rollouts/phase_4_deployment.state.json; this file belongs to no plan: delete this one",
         line_of='"flag"'),
    Case("state_of_a_renamed_plan", {"rollouts/old_name.state.json": state(plan="old_name")},
         "rollouts/old_name.state.json", 0, "flag",
         "rename it to phase_4_deployment.state.json with \"plan\": 'phase_4_deployment'",
         line_of='"flag"'),
    Case("state_step_past_the_plan", {S: state(step=42)}, S, 0, "step",
         "42 is past the last step of rollouts/phase_4_deployment.yaml (steps[6]; steps are "
         "counted from 0)", line_of='"step"'),
    Case("state_step_a_float", {S: state(step=2.0)}, S, 0, "step",
         "2.0 is a number, expected an integer (2)", line_of='"step"'),
    Case("state_percentage_not_its_step", {S: state(current_percentage=30)}, S, 0,
         "current_percentage",
         "30, but steps[2] of rollouts/phase_4_deployment.yaml is 10%: a rollout is at its "
         "step's percentage", line_of='"current_percentage"'),
    Case("state_rolled_back_above_zero",
         {S: state(phase="rolled_back", step=0, current_percentage=25)}, S, 0,
         "current_percentage", "25: a rolled back rollout is at 0%", line_of='"current_percentage"'),
    Case("state_completed_before_the_last_step", {S: state(phase="completed")}, S, 0, "step",
         "2: a completed rollout is at the last step of rollouts/phase_4_deployment.yaml",
         line_of='"step"'),
    Case("state_flag_of_another_flag", {S: state(flag="otel_enabled")}, S, 0, "flag",
         "the state is of the flag 'otel_enabled' but its plan rollouts/phase_4_deployment.yaml "
         "rolls out 'phase_4_deployment' (a renamed flag?): delete "
         "rollouts/phase_4_deployment.state.json to start 'phase_4_deployment' afresh (held at 0% "
         "until `rollout resume`), or keep the flag's old name", line_of='"flag"'),
    Case("state_plan_is_a_path", {S: state(plan="../../etc/passwd")}, S, 0, "plan",
         "'../../etc/passwd' is not this file's plan 'phase_4_deployment'", line_of='"plan"'),
    Case("state_two_for_a_flag_without_plan",
         {"rollouts/a.state.json": state(flag="otel_enabled", plan="a"),
          "rollouts/b.state.json": state(flag="otel_enabled", plan="b")},
         "rollouts/b.state.json", 0, "flag",
         "the flag 'otel_enabled' also has the state rollouts/a.state.json: one state per "
         "rollout", line_of='"flag"'),
    Case("state_nan", {S: state().replace('"current_percentage": 10', '"current_percentage": NaN')},
         S, 0, "current_percentage", "NaN: not a finite number", line_of='"current_percentage"'),
    Case("state_overflowing_float",
         {S: state().replace('"current_percentage": 10', '"current_percentage": 1e999')},
         S, 0, "current_percentage", "1e999: not a finite number", line_of='"current_percentage"'),
    Case("state_long_digits", {S: state(consecutive_errors=int("9" * 400))}, S, 0,
         "consecutive_errors", "a number of 400 characters, too long", line_of='"consecutive_errors"'),
    Case("state_duplicate_key", {S: state().replace('"step": 2', '"step": 2,\n  "step": 6')},
         S, 0, "step", "duplicate key", line_of='"step"'),
    # entries named like flag files that no loader reads: said, never opened
    Case("upper_case_suffix", {"flags/new_flag.YAML": flag()}, "flags/new_flag.YAML", 1, "",
         "the suffix '.YAML' is not read: rename the file new_flag.yaml"),
    Case("upper_case_state_suffix", {"rollouts/phase_4_deployment.State.Json": state()},
         "rollouts/phase_4_deployment.State.Json", 1, "", "rename the file "
         "phase_4_deployment.state.json"),
    Case("fifo_flag_file", {}, F, 1, "", "a named pipe (FIFO), not a file: not read",
         special=((F, "fifo", ""),)),
    Case("socket_state_file", {}, S, 1, "", "a socket, not a file: not read",
         special=((S, "socket", ""),)),
    Case("symlink_to_a_device", {}, F, 1, "", "a character device, not a file: not read",
         special=((F, "symlink", "/dev/zero"),)),
    Case("symlink_out_of_the_repository", {}, F, 1, "",
         "a symbolic link to '/etc/hostname', outside the repository: not read",
         special=((F, "symlink", "/etc/hostname"),)),
    Case("dangling_symlink", {}, F, 1, "", "a symbolic link to nothing, not a file",
         special=((F, "symlink", "no_such_file.yaml"),)),
    # --- [tool.rollout] in pyproject.toml ---------------------------------------------------
    Case("config_tool_not_a_table", {"pyproject.toml": "# the tools\ntool = 5\n[project]\nname = 'x'\n"},
         "pyproject.toml", 2, "tool", "5 is an integer, expected a table"),
    Case("config_rollout_not_a_table", {"pyproject.toml": "[tool]\nrollout = 5\n"},
         "pyproject.toml", 2, "tool.rollout", "5 is an integer, expected a table"),
    Case("config_duration_too_long", {}, "pyproject.toml", 0, "tool.rollout.metrics.timeout",
         "'9999999w' is longer than the limit of 366d",
         edit=(("pyproject.toml", 'type = "file"',
                'type = "command"\ncommand = ["x"]\ntimeout = "9999999w"'),
               ("pyproject.toml", 'path = "logs/metrics.json"', "")),
         line_of='timeout = "9999999w"'),
    Case("config_nan", {}, "pyproject.toml", 0, "tool.rollout.metrics.timeout",
         "nan: not a finite number",
         edit=(("pyproject.toml", 'type = "file"', 'type = "file"\ntimeout = nan'),),
         line_of="timeout = nan"),
    Case("config_unknown_key", {}, "pyproject.toml", 0, "tool.rollout.flag_dir", "unknown field",
         edit=(("pyproject.toml", 'flags_dir = "flags"', 'flag_dir = "flags"'),), line_of="flag_dir ="),
    Case("config_missing_folder", {}, "pyproject.toml", 0, "tool.rollout.rollouts_dir",
         "the folder 'plans' does not exist",
         edit=(("pyproject.toml", 'rollouts_dir = "rollouts"', 'rollouts_dir = "plans"'),),
         line_of='rollouts_dir = "plans"'),
    Case("config_folder_outside", {}, "pyproject.toml", 0, "tool.rollout.flags_dir",
         "must be a folder inside the repository",
         edit=(("pyproject.toml", 'flags_dir = "flags"', 'flags_dir = "../flags"'),),
         line_of='flags_dir = "../flags"'),
    Case("config_same_folder_twice", {}, "pyproject.toml", 0, "tool.rollout.rollouts_dir",
         "need folders of their own",
         edit=(("pyproject.toml", 'rollouts_dir = "rollouts"', 'rollouts_dir = "flags"'),),
         line_of='rollouts_dir = "flags"'),
    Case("config_invalid_toml", {}, "pyproject.toml", 0, "", "invalid TOML",
         edit=(("pyproject.toml", 'rollouts_dir = "rollouts"', 'rollouts_dir = "rollouts'),),
         line_of='rollouts_dir = "rollouts'),
    Case("config_metrics_wrong_type", {}, "pyproject.toml", 0, "tool.rollout.metrics.type",
         "'datadog' is not one of file, prometheus, command",
         edit=(("pyproject.toml", 'type = "file"', 'type = "datadog"'),), line_of='type = "datadog"'),
    # --- freeze windows and the halt switch (docs/environments.md, Freeze windows and halting) ---
    Case("freeze_bad_weekday", {}, "pyproject.toml", 0, "tool.rollout.freeze[0].weekly",
         "'mun' is not a day of the week",
         edit=(("pyproject.toml", 'rollouts_dir = "rollouts"', 'rollouts_dir = "rollouts"\n'
                'freeze = [{weekly = "fri 16:00-mun 08:00", reason = "weekend"}]'),),
         line_of="freeze ="),
    Case("freeze_end_before_start", {}, "pyproject.toml", 0, "tool.rollout.freeze[1].end",
         "'2026-12-20T00:00:00Z' is not after the start '2026-12-24T00:00:00Z'",
         edit=(("pyproject.toml", 'rollouts_dir = "rollouts"', 'rollouts_dir = "rollouts"\n'
                'freeze = [\n  {weekly = "sat-sun", reason = "weekend"},\n'
                '  {start = "2026-12-24T00:00:00Z", end = "2026-12-20T00:00:00Z", '
                'reason = "holidays"},\n]'),),
         line_of='end = "2026-12-20'),
    Case("freeze_dated_and_weekly", {}, "pyproject.toml", 0, "tool.rollout.freeze[0].start",
         "dated (start and end) or weekly, not both",
         edit=(("pyproject.toml", 'rollouts_dir = "rollouts"', 'rollouts_dir = "rollouts"\n'
                'freeze = [{start = "2026-12-24T00:00:00Z", end = "2026-12-27T00:00:00Z", '
                'weekly = "sat-sun", reason = "x"}]'),),
         line_of="freeze ="),
    Case("freeze_not_a_time", {}, "pyproject.toml", 0, "tool.rollout.freeze[0].start",
         "'christmas' is not an ISO 8601 time",
         edit=(("pyproject.toml", 'rollouts_dir = "rollouts"', 'rollouts_dir = "rollouts"\n'
                'freeze = [{start = "christmas", end = "2026-12-27T00:00:00Z", '
                'reason = "x"}]'),),
         line_of="freeze ="),
    Case("freeze_of_an_environment", {}, "pyproject.toml", 0,
         "tool.rollout.environments.production.freeze[0].weekly", "25:00 is not a time of day",
         edit=(("pyproject.toml", 'path = "logs/metrics.json"',
                'path = "logs/metrics.json"\n\n[tool.rollout.environments.production]\n'
                'freeze = [{weekly = "sat 25:00-sun", reason = "x"}]'),),
         line_of="freeze ="),
    Case("halt_file_not_json", {"rollouts/HALT.json": "{halted by alice\n"},
         "rollouts/HALT.json", 1, "", "cannot read"),
    Case("halt_file_without_reason", {"rollouts/HALT.json": json.dumps(
        {"halted_by": "alice", "halted_at": "2026-12-07T10:00:00Z"})},
         "rollouts/HALT.json", 1, "", "reason: expected text"),
    Case("halt_of_an_undeclared_environment", {"rollouts/HALT.prod.json": json.dumps(
        {"halted_by": "alice", "halted_at": "2026-12-07T10:00:00Z", "reason": "x"})},
         "rollouts/HALT.prod.json", 1, "", "which [tool.rollout.environments] does not declare"),
    # --- [tool.rollout.publish.sets]: flag sets (docs/serving.md, Flag sets) -------------
    Case("sets_unknown_set_on_a_flag", {F: flag("sets: [checkuot]\n")}, F, 6, "sets[0]",
         "unknown set 'checkuot'",
         edit=(("pyproject.toml", 'path = "logs/metrics.json"',
                'path = "logs/metrics.json"\n\n[tool.rollout.publish.sets]\ncheckout = ["otel_*"]'),)),
    Case("sets_unknown_set_none_declared", {F: flag("sets: [checkout]\n")}, F, 6, "sets[0]",
         "none is declared"),
    Case("sets_bad_set_name", {}, "pyproject.toml", 0, "tool.rollout.publish.sets",
         "does not match",
         edit=(("pyproject.toml", 'path = "logs/metrics.json"',
                'path = "logs/metrics.json"\n\n[tool.rollout.publish.sets]\nCheckout = ["otel_*"]'),),
         line_of="[tool.rollout.publish.sets]"),
    Case("sets_unclosed_glob", {}, "pyproject.toml", 0, "tool.rollout.publish.sets.checkout[1]",
         "without its closing ]",
         edit=(("pyproject.toml", 'path = "logs/metrics.json"',
                'path = "logs/metrics.json"\n\n[tool.rollout.publish.sets]\n'
                'mobile = []\ncheckout = ["otel_*", "phase_[45"]'),),
         line_of="checkout ="),
    Case("sets_glob_with_a_slash", {}, "pyproject.toml", 0, "tool.rollout.publish.sets.checkout[0]",
         "does not match",
         edit=(("pyproject.toml", 'path = "logs/metrics.json"',
                'path = "logs/metrics.json"\n\n[tool.rollout.publish.sets]\n'
                'checkout = ["flags/otel_*"]'),),
         line_of="checkout ="),
    Case("sets_exact_key_names_no_flag", {}, "pyproject.toml", 0,
         "tool.rollout.publish.sets.checkout[1]",
         "no flag 'otel_enabeld' in the flags folder; did you mean otel_enabled?",
         edit=(("pyproject.toml", 'path = "logs/metrics.json"',
                'path = "logs/metrics.json"\n\n[tool.rollout.publish.sets]\n'
                'checkout = ["phase_*", "otel_enabeld"]'),),
         line_of="checkout ="),
    # --- flags' environments: blocks (docs/environments.md, Flags per environment) -------
    Case("env_override_undeclared", {F: flag("environments:\n  prodution:\n    enabled: false\n")},
         F, 7, "environments.prodution", "'prodution' is not a declared environment (declared: "
         "staging, production); did you mean production?", edit=ENVS),
    Case("env_override_none_declared", {F: flag("environments:\n  production:\n    enabled: false\n")},
         F, 7, "environments.production", "no environments are declared"),
    Case("env_override_field_not_overridable",
         {F: flag("environments:\n  production:\n    rollout_variant: 'on'\n")},
         F, 8, "environments.production.rollout_variant", "unknown field", edit=ENVS),
    Case("env_override_unknown_default_variant",
         {F: flag("environments:\n  staging:\n    default_variant: onn\n")},
         F, 8, "environments.staging.default_variant", "variant 'onn' is not one of the flag's "
         "variants", edit=ENVS),
    Case("env_override_split_not_100",
         {F: flag("environments:\n  staging:\n    percentage: {'on': 30, 'off': 30}\n")},
         F, 8, "environments.staging.percentage", "shares add up to 60, not 100", edit=ENVS),
    Case("env_override_percentage_on_a_planned_flag",
         {F: flag("environments:\n  staging:\n    percentage: 50\n"),
          P: plan("strategy: safe\ngates:\n  error_rate: 1\n")},
         F, 8, "environments.staging.percentage", "driven by the rollout plan", edit=ENVS),
    # --- metric sources: mistakes that would make every evaluation an error ---------------
    Case("template_undefined_variable",
         {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1\nmetrics:\n  type: file\n"
                             "  path: 'metrics/{{ flg }}.json'\n")},
         P, 8, "metrics.path", "'flg' is undefined"),
    Case("template_sandbox_escape",
         {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1\nmetrics:\n  type: command\n"
                             "  command: [echo, \"{{ ''.__class__ }}\"]\n")},
         P, 8, "metrics.command[1]", "sandbox"),
    # --- messages that say what to do (issue 21): a near miss names the right word, a
    # number written with its unit says what to write ------------------------------------
    Case("did_you_mean_a_field", {F: flag("defualt_variant: off\n")}, F, 6, "defualt_variant",
         "unknown field; did you mean default_variant?"),
    Case("did_you_mean_a_risk", {F: flag().replace("risk: low", "risk: hihg")}, F, 5, "risk",
         "'hihg' is not one of low, medium, high; did you mean high?"),
    Case("did_you_mean_a_flag", {F: flag(), P: plan("strategy: safe\n", flag_key="new_flga")},
         P, 2, "flag", "no flag 'new_flga' in the flags folder; did you mean new_flag?"),
    Case("did_you_mean_a_required_flag", {F: flag("requires: [phase_4_deploymnet]\n")},
         F, 6, "requires[0]", "requires unknown flag 'phase_4_deploymnet'; did you mean "
         "phase_4_deployment?"),
    Case("did_you_mean_a_strategy", {F: flag(), P: plan("strategy: saef\n")}, P, 3, "strategy",
         "'saef' is not one of safe, fast, instant, custom; did you mean safe?"),
    Case("did_you_mean_a_gate", {F: flag(), P: plan("strategy: safe\ngates:\n  eror_rate: 1\n")},
         P, 5, "gates.eror_rate", "unknown field; did you mean error_rate?"),
    Case("did_you_mean_a_variant", {F: flag("default_variant: of\n")}, F, 6, "default_variant",
         "variant 'of' is not one of the flag's variants ['off', 'on']; did you mean off?"),
    Case("did_you_mean_a_metric_source",
         {F: flag(), P: plan("strategy: safe\nmetrics: {type: promethus, url: 'http://p'}\n")},
         P, 4, "metrics.type", "'promethus' is not one of file, prometheus, command; did you "
         "mean prometheus?"),
    Case("unit_latency_in_ms", {F: flag(), P: plan("strategy: safe\ngates:\n  p95_latency_ms: 500ms\n")},
         P, 5, "gates.p95_latency_ms", "'500ms' is a string, expected number or object: write 500 "
         "(milliseconds, without a unit)"),
    Case("unit_latency_in_seconds",
         {F: flag(), P: plan("strategy: safe\ngates:\n  p99_latency_ms: {max: 2s}\n")},
         P, 5, "gates.p99_latency_ms.max", "write 2000 (milliseconds, without a unit)"),
    Case("unit_error_rate_with_percent",
         {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1%\n")},
         P, 5, "gates.error_rate", "'1%' is a string, expected number or object: write 1 "
         "(percent, without %)"),
    Case("unit_step_with_percent",
         {F: flag(), P: plan("strategy: custom\nsteps: [0, '5%', 100]\n")},
         P, 4, "steps[1]", "'5%' is a string, expected number or object: write 5 (a percentage "
         "of users, without %)"),
    Case("unit_step_percentage_with_percent",
         {F: flag(), P: plan("strategy: custom\nsteps:\n  - 0\n  - {percentage: 10%}\n  - 100\n")},
         P, 6, "steps[1].percentage", "write 10 (a percentage of users, without %)"),
    Case("unit_request_count_quoted",
         {F: flag(), P: plan("strategy: safe\ngates:\n  request_count: '100'\n")},
         P, 5, "gates.request_count", "write 100 (a whole number, without quotes)"),
    Case("unit_max_increase_with_percent",
         {F: flag(), P: plan(COMPARE + "  error_rate: {max_increase: 0.5%}\n")},
         P, 8, "compare.error_rate.max_increase", "write 0.5 (percentage points, without % or pp)"),
    Case("unit_objective_in_ms",
         {F: flag(), P: plan(COMPARE + "  slow_rate: {objective_ms: 300ms, max_increase: 1}\n")},
         P, 8, "compare.slow_rate.objective_ms", "write 300 (milliseconds, without a unit)"),
    Case("unit_confidence_in_percent",
         {F: flag(), P: plan(COMPARE + "  error_rate: {max_increase: 1}\n  confidence: 95%\n")},
         P, 9, "compare.confidence", "write 0.95 (a fraction of 1, without %)"),
    Case("traffic_without_a_unit", {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1\n"
         "traffic: 6000\n")}, P, 6, "traffic", "write 6000/h"),
    Case("traffic_in_words", {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1\n"
         "traffic: 6000/hour\n")}, P, 6, "traffic", "is not a traffic such as 6000/h"),
    Case("traffic_of_nothing", {F: flag(), P: plan("strategy: safe\ngates:\n  error_rate: 1\n"
         "traffic: 0/h\n")}, P, 6, "traffic", "no traffic at all"),
    Case("traffic_object_without_requests", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\ntraffic:\n  error_rate: 0.3\n")},
         P, 6, "traffic", "needs one of requests_per_hour, query"),
    Case("traffic_query_without_prometheus", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\ntraffic:\n  requests_per_hour: 6000\n"
         "  query: sum(rate(requests_total[7d])) * 3600\n")},
         P, 8, "traffic.query", "a measured traffic is read from a prometheus metrics source, "
         "and this plan's is file"),
    Case("traffic_query_undefined_variable", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\nmetrics:\n  type: prometheus\n"
         "  url: http://127.0.0.1:9\n  queries:\n    error_rate: 'vector(0)'\n"
         "traffic:\n  query: 'sum(rate(x{flag=\"{{ flg }}\"}[7d])) * 3600'\n")},
         P, 12, "traffic.query", "'flg' is undefined"),
    Case("traffic_query_empty", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\ntraffic:\n  query: ''\n")},
         P, 7, "traffic.query", "must not be empty"),
    Case("traffic_power_of_one", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\ntraffic:\n  requests_per_hour: 6000\n"
         "  power: 1\n")}, P, 8, "traffic.power", "1 is greater than or equal to the maximum of 1"),
    Case("traffic_baseline_with_percent", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\ntraffic:\n  requests_per_hour: 6000\n"
         "  error_rate: 0.3%\n")}, P, 8, "traffic.error_rate", "write 0.3 (percent, without %)"),
    # --- environments (issue 20) -----------------------------------------------------------
    Case("plan_promote_after_without_environments", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\npromote_after: 1h\n")},
         P, 6, "promote_after", "declares no environments"),
    Case("plan_environment_not_declared", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\nenvironments:\n  staging: {}\n  qa: {}\n")},
         P, 8, "environments.qa", "'qa' is not a declared environment",
         edit=(("pyproject.toml", "[tool.rollout.metrics]",
                "[tool.rollout.environments.staging]\n[tool.rollout.environments.production]\n\n"
                "[tool.rollout.metrics]"),)),
    Case("plan_environment_overrides_flag", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\nenvironments:\n  production:\n"
         "    flag: other\n")},
         P, 8, "environments.production.flag", "",
         edit=(("pyproject.toml", "[tool.rollout.metrics]",
                "[tool.rollout.environments.staging]\n[tool.rollout.environments.production]\n\n"
                "[tool.rollout.metrics]"),)),
    Case("plan_environment_soak_too_long", {F: flag(), P: plan(
         "strategy: safe\ngates:\n  error_rate: 1\nenvironments:\n  production:\n"
         "    promote_after: 99999999999999999d\n")},
         P, 8, "environments.production.promote_after", "",
         edit=(("pyproject.toml", "[tool.rollout.metrics]",
                "[tool.rollout.environments.staging]\n[tool.rollout.environments.production]\n\n"
                "[tool.rollout.metrics]"),)),
    Case("unit_flag_percentage_with_percent", {F: flag("percentage: 10%\n")}, F, 6, "percentage",
         "write 10 (percent, without %)"),
]
