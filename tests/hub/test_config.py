"""Tests of hub.config: what a person writing crmhub.yaml sees, right or wrong."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any, ClassVar, cast

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from connectors.registry import UnknownConnectorError
from hub.config import (
    DEFAULT_MATCH,
    Config,
    ConfigError,
    ConflictPolicy,
    Schedule,
    SplitConfig,
    find_config_path,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example-memory.yaml"

# ----------------------------------------------------------------------------- stand-ins
# Connectors with known settings, so these tests do not depend on which ones are installed.
# The memory stand-in mirrors connectors.memory's settings; tests of the real entry point are
# at the end.


class MemorySettingsStandIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    path: Path | None = None
    page_size: int = 100


class MemoryStandIn:
    settings_model: ClassVar[type[BaseModel]] = MemorySettingsStandIn
    vendor: ClassVar[str] = "memory"


class TokenSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: SecretStr
    base_url: str = "https://api.example.com"
    portal_id: int | None = None

    @field_validator("token")
    @classmethod
    def _looks_like_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("pat-"):
            # Careless on purpose, as third-party code may be: it echoes the secret.
            raise ValueError(f"token {value.get_secret_value()} must start with pat-")
        return value


class TokenConnector:
    settings_model: ClassVar[type[BaseModel]] = TokenSettings
    vendor: ClassVar[str] = "hubspot"


class ApiKeySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    api_key: str
    datacenter: str = "eu"


class ApiKeyConnector:
    settings_model: ClassVar[type[BaseModel]] = ApiKeySettings
    vendor: ClassVar[str] = "zoho"


class BudgetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit_storage: str = "memory://"


class BudgetConnector:
    """Shares its vendor budget through ``rate_limit_storage``, as the HTTP connectors do."""

    settings_model: ClassVar[type[BaseModel]] = BudgetSettings
    vendor: ClassVar[str] = "bitrix24"


STAND_INS: dict[str, Any] = {
    "memory": MemoryStandIn,
    "hubspot": TokenConnector,
    "zoho": ApiKeyConnector,
}


def stand_in_loader(name: str) -> Any:
    try:
        return STAND_INS[name]
    except KeyError:
        raise UnknownConnectorError(name, sorted(STAND_INS)) from None


TOKEN = "pat-test-0123456789abcdef"
TWO_MEMORY = """\
systems:
  a: {connector: memory}
  b: {connector: memory}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


def parse(text: str, folder: Path, env: dict[str, str] | None = None) -> Config:
    return parse_config(
        dedent(text),
        source=folder / "crmhub.yaml",
        environ=env or {},
        connector_loader=stand_in_loader,
    )


def error_of(text: str, folder: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(text, folder, env)
    message = str(caught.value)
    assert "\n" not in message
    return caught.value


def message_of(text: str, folder: Path, env: dict[str, str] | None = None) -> str:
    # Messages name the file as the user named it; strip the temporary folder for readability.
    return str(error_of(text, folder, env)).replace(f"{folder}/", "")


def with_sync(sync: str, systems: str = TWO_MEMORY) -> str:
    return systems + "syncs:\n  main:\n" + "".join(f"    {line}\n" for line in sync.splitlines())


# ------------------------------------------------------------------------------ defaults


def test_minimal_sync_gets_documented_defaults(folder: Path) -> None:
    config = parse(with_sync("systems: [a, b]"), folder)
    sync = config.syncs["main"]
    assert sync.systems == {"a": "both", "b": "both"}
    assert sync.objects == ("companies", "contacts", "deals")
    assert sync.schedule is None
    assert sync.match == dict(DEFAULT_MATCH)
    assert sync.conflicts == ConflictPolicy(kind="newest", fallback="newest")
    assert sync.deletes == "ignore"
    assert sync.max_delete_fraction == 0.5
    assert sync.overlap_seconds == 300
    assert sync.delete_sweep_seconds == 86400
    assert sync.fields == {}
    assert sync.split is None
    assert config.source == folder / "crmhub.yaml"


def test_models_are_frozen(folder: Path) -> None:
    config = parse(with_sync("systems: [a, b]"), folder)
    with pytest.raises(ValueError, match="frozen"):
        config.syncs["main"].deletes = "propagate"  # type: ignore[misc]


def test_list_of_systems_means_all_read_and_write_in_order(folder: Path) -> None:
    systems = TWO_MEMORY + "  c: {connector: memory}\n"
    sync = parse(with_sync("systems: [c, a, b]", systems), folder).syncs["main"]
    assert list(sync.systems) == ["c", "a", "b"]
    assert sync.readers == ("c", "a", "b")
    assert sync.writers == ("c", "a", "b")


def test_mapping_of_systems_sets_each_direction(folder: Path) -> None:
    systems = TWO_MEMORY + "  c: {connector: memory}\n"
    sync = parse(with_sync("systems: {b: read, c: both, a: write}", systems), folder)
    main = sync.syncs["main"]
    assert main.systems == {"b": "read", "c": "both", "a": "write"}
    assert main.readers == ("b", "c")
    assert main.writers == ("c", "a")


def test_user_match_keys_replace_only_their_object_type(folder: Path) -> None:
    sync = parse(
        with_sync(
            "systems: [a, b]\n"
            "match: {contacts: [email, [first_name, last_name]], companies: domain}"
        ),
        folder,
    ).syncs["main"]
    assert sync.match == {
        "companies": (("domain",),),
        "contacts": (("email",), ("first_name", "last_name")),
        "deals": (("name", "company"),),
    }


def test_objects_run_in_dependency_order_whatever_the_file_says(folder: Path) -> None:
    sync = parse(with_sync("systems: [a, b]\nobjects: [deals, companies]"), folder)
    assert sync.syncs["main"].objects == ("companies", "deals")


def test_conflict_policies(folder: Path) -> None:
    def policy(text: str) -> ConflictPolicy:
        return (
            parse(with_sync(f"systems: [a, b]\nconflicts: {text}"), folder).syncs["main"].conflicts
        )

    assert policy("manual") == ConflictPolicy(kind="manual", fallback="manual")
    assert policy("{prefer: [b, a]}") == ConflictPolicy(kind="prefer", prefer=("b", "a"))
    owners_only = policy("{owners: {contacts.phone: b}, fallback: manual}")
    assert owners_only == ConflictPolicy(
        kind="manual", owners={"contacts.phone": "b"}, fallback="manual"
    )
    assert policy("{owners: {contacts.phone: b}}").kind == "newest"


def test_delete_policy_fraction_overlap_and_extra_fields(folder: Path) -> None:
    sync = parse(
        with_sync(
            "systems: [a, b]\n"
            "deletes: propagate\n"
            "max_delete_fraction: 20%\n"
            "overlap: 90s\n"
            "delete_sweep: 6h\n"
            "fields: {contacts: {custom.segment: {a: segment, b: Segment__c}}}"
        ),
        folder,
    ).syncs["main"]
    assert sync.deletes == "propagate"
    assert sync.max_delete_fraction == pytest.approx(0.2)
    assert sync.overlap_seconds == 90
    assert sync.delete_sweep_seconds == 6 * 3600
    assert sync.fields == {"contacts": {"custom.segment": {"a": "segment", "b": "Segment__c"}}}


# ------------------------------------------------------------------------------ schedule


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1.5h", 5400)],
)
def test_interval_schedules(folder: Path, text: str, seconds: float) -> None:
    schedule = parse(with_sync(f"systems: [a, b]\nschedule: {text}"), folder).syncs["main"]
    assert schedule.schedule == Schedule(kind="interval", seconds=seconds)


def test_cron_schedule_uses_standard_crontab_weekdays(folder: Path) -> None:
    config = parse(with_sync("systems: [a, b]\nschedule: '0 9 * * 1-5'"), folder)
    schedule = config.syncs["main"].schedule
    assert schedule is not None
    assert (schedule.kind, schedule.cron) == ("cron", "0 9 * * 1-5")
    saturday = datetime(2024, 6, 8, 12, 0, tzinfo=UTC)
    # 1-5 is Monday to Friday in crontab (APScheduler 3's from_crontab would say Tuesday).
    assert schedule.next_after(saturday) == datetime(2024, 6, 10, 9, 0, tzinfo=UTC)


def test_bad_schedule_is_named(folder: Path) -> None:
    assert message_of(with_sync("systems: [a, b]\nschedule: every tuesday"), folder) == (
        "crmhub.yaml: syncs.main.schedule: 'every tuesday' is neither an interval like 5m "
        "nor a cron expression like '*/15 * * * *'"
    )
    assert message_of(with_sync("systems: [a, b]\nschedule: '61 * * * *'"), folder).endswith(
        "syncs.main.schedule: '61 * * * *' is not a valid cron expression "
        "(minute hour day-of-month month day-of-week)"
    )
    assert message_of(with_sync("systems: [a, b]\nschedule: '0 0 31 2 *'"), folder).endswith(
        "'0 0 31 2 *' never fires (no date matches it)"
    )
    assert message_of(with_sync("systems: [a, b]\nschedule: 300"), folder).endswith(
        "syncs.main.schedule: 300 has no unit: write e.g. 300s or 300m"
    )


# ------------------------------------------------------------------------- interpolation


HUBSPOT = """\
systems:
  hs:
    connector: hubspot
    token: ${HUBSPOT_TOKEN}
"""


def test_environment_variable_is_substituted(folder: Path) -> None:
    config = parse(HUBSPOT, folder, {"HUBSPOT_TOKEN": TOKEN})
    settings = config.systems["hs"].settings
    assert isinstance(settings, TokenSettings)
    assert settings.token.get_secret_value() == TOKEN


def test_default_applies_when_variable_unset_or_empty(folder: Path) -> None:
    text = "systems:\n  hs: {connector: hubspot, token: '${HS_TOKEN:-pat-default}'}\n"
    for env in ({}, {"HS_TOKEN": ""}):
        settings = parse(text, folder, env).systems["hs"].settings
        assert isinstance(settings, TokenSettings)
        assert settings.token.get_secret_value() == "pat-default"
    settings = parse(text, folder, {"HS_TOKEN": TOKEN}).systems["hs"].settings
    assert isinstance(settings, TokenSettings)
    assert settings.token.get_secret_value() == TOKEN


def test_nested_default_and_escaped_dollar(folder: Path) -> None:
    text = (
        "systems:\n"
        "  hs: {connector: hubspot, token: 'pat-${A:-${B:-x}}-$$HOME-$5'}\n"
        "  b: {connector: memory}\n"
    )
    settings = parse(text, folder, {"B": "bee"}).systems["hs"].settings
    assert isinstance(settings, TokenSettings)
    assert settings.token.get_secret_value() == "pat-bee-$HOME-$5"


def test_values_from_the_environment_are_not_expanded_again(folder: Path) -> None:
    settings = parse(HUBSPOT, folder, {"HUBSPOT_TOKEN": "pat-${X}$$"}).systems["hs"].settings
    assert isinstance(settings, TokenSettings)
    assert settings.token.get_secret_value() == "pat-${X}$$"


def test_missing_variable_names_key_path_and_variable(folder: Path) -> None:
    error = error_of(HUBSPOT, folder)
    assert str(error).replace(f"{folder}/", "") == (
        "crmhub.yaml: systems.hs.token: environment variable HUBSPOT_TOKEN is not set"
    )
    assert error.key_path == "systems.hs.token"
    assert error.path == folder / "crmhub.yaml"


def test_unset_variable_in_an_unused_default_is_no_error(folder: Path) -> None:
    text = "systems:\n  hs: {connector: hubspot, token: '${T:-${UNSET}}'}\n"
    settings = parse(text, folder, {"T": TOKEN}).systems["hs"].settings
    assert isinstance(settings, TokenSettings)


def test_malformed_references(folder: Path) -> None:
    text = "systems:\n  hs: {connector: hubspot, token: '${HUBSPOT_TOKEN'}\n"
    assert message_of(text, folder) == (
        "crmhub.yaml: systems.hs.token: unterminated '${' "
        "(close it with '}', or write $$ for a dollar sign)"
    )
    text = "systems:\n  hs: {connector: hubspot, token: '${HUBSPOT_TOKEN:?no}'}\n"
    assert message_of(text, folder).endswith(
        "unsupported syntax after '${HUBSPOT_TOKEN'; use ${HUBSPOT_TOKEN} or "
        "${HUBSPOT_TOKEN:-default}"
    )


# ------------------------------------------------------------------------------ database


def test_relative_sqlite_path_is_relative_to_the_config_folder(folder: Path) -> None:
    config = parse("database: sqlite:///state/crmhub.db\n" + TWO_MEMORY, folder)
    assert config.database == f"sqlite:///{folder}/state/crmhub.db"


def test_default_database_sits_beside_the_config(folder: Path) -> None:
    assert parse(TWO_MEMORY, folder).database == f"sqlite:///{folder}/crmhub.db"


def test_absolute_sqlite_memory_and_postgres_urls_are_kept(folder: Path) -> None:
    for url in ("sqlite:////var/lib/crmhub.db", "sqlite://", "postgresql://u@db.internal/hub"):
        assert parse(f"database: '{url}'\n" + TWO_MEMORY, folder).database == url


def test_relative_connector_paths_are_relative_to_the_config_folder(folder: Path) -> None:
    text = "systems:\n  a: {connector: memory, path: data/a.json}\n"
    settings = parse(text, folder).systems["a"].settings
    assert isinstance(settings, MemorySettingsStandIn)
    assert settings.path == folder / "data" / "a.json"


# ----------------------------------------------------------------------------- discovery


def test_discovery_prefers_explicit_then_environment_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit, from_env, in_cwd = (
        tmp_path / n for n in ("explicit.yaml", "env.yaml", "crmhub.yaml")
    )
    for file in (explicit, from_env, in_cwd):
        file.write_text(TWO_MEMORY)
    monkeypatch.chdir(tmp_path)
    env = {"CRMHUB_CONFIG": str(from_env)}
    assert find_config_path(explicit, env) == explicit
    assert find_config_path(None, env) == from_env
    assert find_config_path(None, {}) == Path("crmhub.yaml")


def test_discovery_does_not_fall_back_past_a_missing_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "crmhub.yaml").write_text(TWO_MEMORY)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^nope\.yaml: file not found \(given with --config\)$"):
        find_config_path(Path("nope.yaml"), {})
    with pytest.raises(ConfigError, match=r"^env\.yaml: file not found \(named by CRMHUB_CONFIG\)"):
        find_config_path(None, {"CRMHUB_CONFIG": "env.yaml"})


def test_no_config_anywhere_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(environ={})
    assert str(caught.value) == (
        f"crmhub.yaml: no config file: looked for --config, then CRMHUB_CONFIG (not set), then "
        f"{tmp_path / 'crmhub.yaml'}; copy config/example-memory.yaml to start"
    )


def test_load_config_reads_the_file(tmp_path: Path) -> None:
    file = tmp_path / "crmhub.yaml"
    file.write_text(with_sync("systems: [a, b]"))
    config = load_config(file, environ={}, connector_loader=stand_in_loader)
    assert list(config.syncs) == ["main"]


# ------------------------------------------------------------------- whole-file errors


def test_malformed_yaml_points_at_line_and_column(folder: Path) -> None:
    text = "systems:\n  a:\n    connector: memory\n  b: [\n"
    error = error_of(text, folder)
    assert str(error).startswith(f"{folder}/crmhub.yaml line 5, column 1: ")
    assert (error.line, error.column) == (5, 1)


def test_bad_indentation_is_one_line(folder: Path) -> None:
    text = "systems:\n  a:\n    connector: memory\n   b: {connector: memory}\n"
    assert message_of(text, folder) == (
        "crmhub.yaml line 4, column 4: expected <block end>, but found '<block mapping start>' "
        "(while parsing a block mapping at line 2, column 3)"
    )


def test_duplicate_keys_are_an_error(folder: Path) -> None:
    text = "systems:\n  a: {connector: memory}\n  a: {connector: memory}\n"
    assert message_of(text, folder) == "crmhub.yaml line 3, column 3: duplicate key 'a'"


def test_top_level_must_be_a_mapping(folder: Path) -> None:
    assert message_of("- systems\n", folder) == (
        "crmhub.yaml: the top level must be a mapping with keys database, phone_region, "
        "broker, rate_limit_storage, systems, syncs, dashboard, not a list"
    )
    assert message_of("", folder).startswith("crmhub.yaml: the file is empty;")


def test_unknown_top_level_key_suggests_the_right_one(folder: Path) -> None:
    text = TWO_MEMORY + "sycns: {}\n"
    assert message_of(text, folder) == "crmhub.yaml: sycns: unknown key (did you mean 'syncs'?)"


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml", environ={})
    assert str(caught.value) == f"{tmp_path}/missing.yaml: file not found (given with --config)"


def test_several_problems_are_reported_together(folder: Path) -> None:
    text = with_sync("systems: [a, b]\ndeletes: purge\noverlap: soon")
    error = error_of(text, folder)
    assert str(error).replace(f"{folder}/", "") == (
        "crmhub.yaml: syncs.main.deletes: 'purge' is not a delete policy (use ignore, propagate "
        "or unlink); syncs.main.overlap: 'soon' is not a duration like 30s, 5m or 1h30m"
    )
    assert [p.key_path for p in error.problems] == ["syncs.main.deletes", "syncs.main.overlap"]
    assert error.key_path == "syncs.main.deletes"


def test_config_error_survives_pickling(folder: Path) -> None:
    error = error_of(with_sync("systems: [a, b]\ndeletes: purge"), folder)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert copy.key_path == error.key_path


# ----------------------------------------------------------------------- system errors


def test_unknown_connector_lists_installed_ones(folder: Path) -> None:
    text = "systems:\n  hs: {connector: hubspt}\n"
    assert message_of(text, folder) == (
        "crmhub.yaml: systems.hs.connector: unknown connector 'hubspt' "
        "(did you mean 'hubspot'? installed: hubspot, memory, zoho)"
    )


def test_missing_credential_is_named_by_key_path(folder: Path) -> None:
    text = "systems:\n  hs: {connector: hubspot}\n"
    assert message_of(text, folder) == (
        "crmhub.yaml: systems.hs.token: missing: the 'hubspot' connector requires it"
    )


def test_invalid_credential_is_named_without_its_value(folder: Path) -> None:
    text = "systems:\n  hs: {connector: hubspot, token: abcdef-secret-value}\n"
    message = message_of(text, folder)
    assert message == "crmhub.yaml: systems.hs.token: token *** must start with pat-"


def test_wrongly_typed_setting(folder: Path) -> None:
    text = f"systems:\n  hs: {{connector: hubspot, token: {TOKEN}, portal_id: twelve}}\n"
    assert message_of(text, folder) == (
        "crmhub.yaml: systems.hs.portal_id: input should be a valid integer, "
        "unable to parse string as an integer"
    )


def test_unknown_connector_setting_is_caught_even_when_the_model_ignores_extras(
    folder: Path,
) -> None:
    text = f"systems:\n  hs: {{connector: hubspot, tokn: {TOKEN}}}\n"
    assert message_of(text, folder) == (
        "crmhub.yaml: systems.hs.tokn: unknown key for the 'hubspot' connector "
        "(did you mean 'token'?); systems.hs.token: missing: the 'hubspot' connector requires it"
    )


def test_base_url_goes_to_the_connector_or_is_refused(folder: Path) -> None:
    text = (
        "systems:\n"
        f"  hs: {{connector: hubspot, token: {TOKEN}, base_url: 'http://localhost:8080'}}\n"
    )
    system = parse(text, folder).systems["hs"]
    assert system.base_url == "http://localhost:8080"
    assert isinstance(system.settings, TokenSettings)
    assert system.settings.base_url == "http://localhost:8080"
    # A connector that cannot take one must not silently talk to the real vendor instead.
    text = "systems:\n  z: {connector: zoho, api_key: k123, base_url: 'http://localhost:8080'}\n"
    assert message_of(text, folder) == (
        "crmhub.yaml: systems.z.base_url: the 'zoho' connector does not take a base_url"
    )


def test_phone_regions(folder: Path) -> None:
    text = "phone_region: us\nsystems:\n  a: {connector: memory, phone_region: NO}\n"
    config = parse(text, folder)
    assert config.phone_region == "US"
    assert config.systems["a"].phone_region == "NO"  # Norway, not YAML 1.1's false
    assert message_of("phone_region: XX\n" + TWO_MEMORY, folder) == (
        "crmhub.yaml: phone_region: 'XX' is not a two-letter region code like US or DE"
    )


def test_system_without_connector(folder: Path) -> None:
    assert message_of("systems:\n  a: {path: x.json}\n", folder) == (
        "crmhub.yaml: systems.a.connector: missing: name the connector, e.g. memory or hubspot"
    )


def test_connector_class_and_settings_are_kept(folder: Path) -> None:
    system = parse(TWO_MEMORY, folder).systems["a"]
    assert cast(object, system.connector_class) is MemoryStandIn
    assert isinstance(system.settings, MemorySettingsStandIn)
    assert "settings" not in repr(system)


# ------------------------------------------------------------------------- sync errors


def test_sync_naming_an_undefined_system(folder: Path) -> None:
    systems = "systems:\n  hubspot: {connector: memory}\n  zoho: {connector: memory}\n"
    assert message_of(with_sync("systems: [hubspot, zoho2]", systems), folder) == (
        "crmhub.yaml: syncs.main.systems: unknown system 'zoho2' (defined: hubspot, zoho)"
    )


def test_sync_needs_two_systems_a_reader_and_a_writer(folder: Path) -> None:
    assert message_of(with_sync("systems: [a]"), folder) == (
        "crmhub.yaml: syncs.main.systems: a sync needs at least two systems, got 1"
    )
    assert message_of(with_sync("systems: {a: write, b: write}"), folder) == (
        "crmhub.yaml: syncs.main.systems: no system reads: mark at least one 'read' or 'both'"
    )
    assert message_of(with_sync("systems: {a: read, b: read}"), folder) == (
        "crmhub.yaml: syncs.main.systems: no system writes: mark at least one 'write' or 'both'"
    )
    assert message_of(with_sync("systems: {a: read, b: copy}"), folder) == (
        "crmhub.yaml: syncs.main.systems.b: 'copy' is not an access mode (use both, read or write)"
    )
    assert message_of(with_sync("systems: [a, a]"), folder) == (
        "crmhub.yaml: syncs.main.systems: system 'a' is listed twice"
    )


def test_unknown_sync_key(folder: Path) -> None:
    assert message_of(with_sync("systems: [a, b]\nschedul: 5m"), folder) == (
        "crmhub.yaml: syncs.main.schedul: unknown key (did you mean 'schedule'?)"
    )


def test_unknown_object_type(folder: Path) -> None:
    assert message_of(with_sync("systems: [a, b]\nobjects: [contact]"), folder) == (
        "crmhub.yaml: syncs.main.objects: unknown object type 'contact' (did you mean 'contacts'?)"
    )
    assert message_of(with_sync("systems: [a, b]\nobjects: [tickets]"), folder) == (
        "crmhub.yaml: syncs.main.objects: unknown object type 'tickets' "
        "(known: companies, contacts, deals)"
    )


def test_unknown_match_field(folder: Path) -> None:
    assert message_of(with_sync("systems: [a, b]\nmatch: {contacts: [emial]}"), folder) == (
        "crmhub.yaml: syncs.main.match.contacts: unknown field 'emial' for contacts "
        "(did you mean 'email'?)"
    )
    assert message_of(with_sync("systems: [a, b]\nmatch: {contacts: []}"), folder).startswith(
        "crmhub.yaml: syncs.main.match.contacts: must list at least one match key"
    )


def test_conflict_policy_errors(folder: Path) -> None:
    sync = "systems: {a: both, b: write}\nconflicts: "
    assert message_of(with_sync(sync + "{prefer: [a, c]}"), folder) == (
        "crmhub.yaml: syncs.main.conflicts.prefer: system 'c' is not in this sync "
        "(its systems: a, b)"
    )
    assert message_of(with_sync(sync + "{owners: {contacts.phone: c}}"), folder) == (
        "crmhub.yaml: syncs.main.conflicts.owners.contacts.phone: system 'c' is not in this "
        "sync (its systems: a, b)"
    )
    assert message_of(with_sync(sync + "{owners: {contacts.phone: b}}"), folder) == (
        "crmhub.yaml: syncs.main.conflicts.owners.contacts.phone: system 'b' only writes in "
        "this sync; owners must read"
    )
    assert message_of(with_sync(sync + "{owners: {phone: a}}"), folder) == (
        "crmhub.yaml: syncs.main.conflicts.owners.phone: owner keys are object.field, "
        "e.g. contacts.phone"
    )
    assert message_of(with_sync(sync + "{owners: {contacts.fax_no: a}}"), folder) == (
        "crmhub.yaml: syncs.main.conflicts.owners.contacts.fax_no: unknown field 'fax_no' for "
        "contacts (known: address.city, address.country, address.postal_code, address.region, "
        "address.street, company, email, first_name, job_title, last_name, mobile, phone, "
        "or custom.<name>)"
    )
    assert message_of(with_sync(sync + "oldest"), folder) == (
        "crmhub.yaml: syncs.main.conflicts: 'oldest' is not a conflict policy (use newest, "
        "manual, or {prefer: [a, b], owners: {contacts.phone: b}, fallback: newest})"
    )


def test_extra_field_errors(folder: Path) -> None:
    text = with_sync("systems: [a, b]\nfields: {contacts: {custom.segment: {c: segment}}}")
    assert message_of(text, folder) == (
        "crmhub.yaml: syncs.main.fields.contacts.custom.segment.c: system 'c' is not in this "
        "sync (its systems: a, b)"
    )
    text = with_sync("systems: [a, b]\nfields: {contacts: {segment: {a: segment}}}")
    assert message_of(text, folder) == (
        "crmhub.yaml: syncs.main.fields.contacts.segment: unknown field 'segment' for contacts "
        "(known: address.city, address.country, address.postal_code, address.region, "
        "address.street, company, email, first_name, job_title, last_name, mobile, phone, "
        "or custom.<name>)"
    )


def test_bad_delete_policy_fraction_and_overlap(folder: Path) -> None:
    assert message_of(with_sync("systems: [a, b]\ndeletes: purge"), folder) == (
        "crmhub.yaml: syncs.main.deletes: 'purge' is not a delete policy "
        "(use ignore, propagate or unlink)"
    )
    for bad in ("0", "1.5", "-0.1", "lots"):
        assert message_of(with_sync(f"systems: [a, b]\nmax_delete_fraction: {bad}"), folder) == (
            "crmhub.yaml: syncs.main.max_delete_fraction: must be a fraction above 0 and at "
            f"most 1, e.g. 0.5 or 50%, not '{bad}'"
        )
    assert message_of(with_sync("systems: [a, b]\noverlap: 5 minutes"), folder) == (
        "crmhub.yaml: syncs.main.overlap: '5 minutes' is not a duration like 30s, 5m or 1h30m"
    )


def test_split_settings_and_their_errors(folder: Path) -> None:
    assert parse(with_sync("systems: [a, b]\nsplit: true"), folder).syncs["main"].split == (
        SplitConfig(tasks=4, min_records=5000)
    )
    chosen = parse(with_sync("systems: [a, b]\nsplit: {tasks: 2, min_records: 100}"), folder)
    assert chosen.syncs["main"].split == SplitConfig(tasks=2, min_records=100)
    assert parse(with_sync("systems: [a, b]\nsplit: false"), folder).syncs["main"].split is None
    for text, message in [
        ("split: {tasks: 0}", "split.tasks: must be a whole number of at least 1"),
        ("split: {tasks: 100}", "split.tasks: must be at most 64, not 100"),
        ("split: {min_records: lots}", "split.min_records: must be a whole number of at least 1"),
        ("split: {task: 2}", "split.task: unknown key"),
        ("split: yes please", "split: must be true, or a mapping like {tasks: 4, min_"),
    ]:
        assert message_of(with_sync(f"systems: [a, b]\n{text}"), folder).startswith(
            f"crmhub.yaml: syncs.main.{message}"
        ), text


# ----------------------------------------------------------------------------- secrets


SECRET = "pat-test-do-not-leak-9f8e7d6c"


@pytest.mark.parametrize(
    "text",
    [
        # the connector's validator echoes it
        "systems:\n  hs: {connector: hubspot, token: 'x${HUBSPOT_TOKEN}'}\n",
        # pasted where an enum-like value belongs
        "systems:\n  hs: {connector: '${HUBSPOT_TOKEN}'}\n",
        TWO_MEMORY + "syncs:\n  main: {systems: [a, b], deletes: '${HUBSPOT_TOKEN}'}\n",
        TWO_MEMORY + "syncs:\n  main: {systems: [a, b], schedule: '${HUBSPOT_TOKEN}'}\n",
        # in a database URL
        "database: 'postgresql://u:${HUBSPOT_TOKEN}@h:port/db'\n" + TWO_MEMORY,
    ],
)
def test_secret_from_environment_never_appears_in_an_error(folder: Path, text: str) -> None:
    message = str(error_of(text, folder, {"HUBSPOT_TOKEN": SECRET}))
    assert SECRET not in message
    assert "do-not-leak" not in message


def test_secret_never_appears_in_redacted_dict(folder: Path) -> None:
    text = (
        "database: 'postgresql+psycopg://hub:${PGPASSWORD}@db.internal/hub'\n"
        "systems:\n"
        "  hs: {connector: hubspot, token: '${HUBSPOT_TOKEN}', "
        "base_url: 'https://u:${PGPASSWORD}@sandbox.local/api?api_key=${PGPASSWORD}'}\n"
        "  z: {connector: zoho, api_key: '${ZOHO_KEY}'}\n"
        "  a: {connector: memory}\n"
        "syncs:\n  main: {systems: [hs, z, a]}\n"
    )
    env = {"HUBSPOT_TOKEN": SECRET, "PGPASSWORD": "pg-Secret-123", "ZOHO_KEY": "zk-Secret-456"}
    config = parse(text, folder, env)
    shown = config.redacted_dict()
    dumped = json.dumps(shown)
    for secret in env.values():
        assert secret not in dumped
    assert secret not in repr(config)
    assert shown["systems"]["hs"]["settings"]["token"] == "***"
    assert shown["systems"]["z"]["settings"] == {"api_key": "***", "datacenter": "eu"}
    assert shown["database"] == "postgresql+psycopg://hub:***@db.internal/hub"
    assert shown["systems"]["hs"]["base_url"] == "https://u:***@sandbox.local/api?api_key=***"
    assert shown["syncs"]["main"]["systems"] == {"hs": "both", "z": "both", "a": "both"}


# ------------------------------------------------------- the real memory connector


def test_example_config_loads_with_the_real_memory_connector() -> None:
    config = load_config(EXAMPLE, environ={})
    assert list(config.systems) == ["a", "b"]
    assert {system.connector for system in config.systems.values()} == {"memory"}
    settings = config.systems["a"].settings
    assert getattr(settings, "path", None) == EXAMPLE.parent / "data" / "a.json"
    sync = next(iter(config.syncs.values()))
    assert sync.objects == ("companies", "contacts", "deals")
    assert sync.readers == sync.writers == ("a", "b")
    assert config.database == f"sqlite:///{EXAMPLE.parent}/crmhub.db"


def test_real_memory_connector_rejects_unknown_settings(tmp_path: Path) -> None:
    file = tmp_path / "crmhub.yaml"
    file.write_text("systems:\n  a: {connector: memory, pth: a.json}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file, environ={})
    assert str(caught.value) == (
        f"{file}: systems.a.pth: unknown key for the 'memory' connector (did you mean 'path'?)"
    )


def test_the_hubspot_zoho_example_loads_and_needs_its_credentials() -> None:
    example = REPO / "config" / "hubspot-zoho.yaml"
    secrets = {
        "HUBSPOT_TOKEN": "pat-test-0000",
        "ZOHO_CLIENT_ID": "1000.TEST",
        "ZOHO_CLIENT_SECRET": "zoho-test-secret",
        "ZOHO_REFRESH_TOKEN": "1000.refresh.test",
    }
    config = load_config(example, environ=secrets)
    assert {name: s.connector for name, s in config.systems.items()} == {
        "hubspot": "hubspot",
        "zoho": "zoho",
    }
    assert config.syncs["crm"].readers == ("hubspot", "zoho")
    with pytest.raises(ConfigError, match="ZOHO_REFRESH_TOKEN"):
        load_config(example, environ={k: v for k, v in secrets.items() if "REFRESH" not in k})


def test_the_four_crm_example_loads_with_every_connector() -> None:
    example = REPO / "config" / "four-crms.yaml"
    names = [
        "HUBSPOT_TOKEN",
        "ZOHO_CLIENT_ID",
        "ZOHO_CLIENT_SECRET",
        "ZOHO_REFRESH_TOKEN",
        "SUITECRM_CLIENT_ID",
        "SUITECRM_CLIENT_SECRET",
        "BITRIX24_WEBHOOK_URL",
    ]
    secrets = {name: f"test-{name.lower()}-value" for name in names}
    secrets["BITRIX24_WEBHOOK_URL"] = "https://example.bitrix24.com/rest/1/testcode123/"
    config = load_config(example, environ=secrets)
    assert [s.connector for s in config.systems.values()] == [
        "hubspot",
        "zoho",
        "suitecrm",
        "bitrix24",
    ]
    sync = config.syncs["everywhere"]
    assert sync.readers == ("hubspot", "zoho", "suitecrm", "bitrix24")
    assert sync.delete_sweep_seconds == 86400


# ------------------------------------------------------------------- scale-out: broker, budget


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672//", "rediss://h:6380/1"]
)
def test_broker_takes_a_redis_or_rabbitmq_url(folder: Path, url: str) -> None:
    config = parse(f"broker: '{url}'\n" + TWO_MEMORY, folder)
    assert config.broker == url
    assert parse(TWO_MEMORY, folder).broker is None


def test_broker_password_is_masked_for_display_and_never_echoed(folder: Path) -> None:
    config = parse("broker: amqp://crm:hunter2hunter@mq:5672//\n" + TWO_MEMORY, folder)
    assert config.redacted_dict()["broker"] == "amqp://crm:***@mq:5672//"
    message = message_of("broker: http://crm:hunter2hunter@mq:5672//\n" + TWO_MEMORY, folder)
    assert message.startswith("crmhub.yaml: broker: must be a Celery broker URL")
    assert "http:// is not one of redis, rediss, amqp, amqps" in message
    assert "hunter2hunter" not in message


@pytest.mark.parametrize("value", ["127.0.0.1:6379", "42", "redis://"])
def test_a_broker_that_is_no_url_is_named(folder: Path, value: str) -> None:
    assert error_of(f"broker: {value}\n" + TWO_MEMORY, folder).key_path == "broker"


def parse_with_budget(text: str, folder: Path) -> Config:
    """Parse with the stand-ins plus ``budget``, a connector with a ``rate_limit_storage``."""
    return parse_config(
        dedent(text),
        source=folder / "crmhub.yaml",
        environ={},
        connector_loader=lambda name: (
            BudgetConnector if name == "budget" else stand_in_loader(name)
        ),
    )


def test_top_level_rate_limit_storage_reaches_every_system_without_its_own(folder: Path) -> None:
    config = parse_with_budget(
        """\
        rate_limit_storage: redis://127.0.0.1:6379/0
        systems:
          shared: {connector: budget}
          own: {connector: budget, rate_limit_storage: "memory://"}
          local: {connector: memory}
        """,
        folder,
    )
    settings = {name: system.settings for name, system in config.systems.items()}
    assert cast(BudgetSettings, settings["shared"]).rate_limit_storage == (
        "redis://127.0.0.1:6379/0"
    )
    assert cast(BudgetSettings, settings["own"]).rate_limit_storage == "memory://"
    # A connector without a budget to share takes no such setting, and gets none.
    assert not hasattr(settings["local"], "rate_limit_storage")
    assert config.rate_limit_storage == "redis://127.0.0.1:6379/0"


def test_without_top_level_rate_limit_storage_each_connector_keeps_its_default(
    folder: Path,
) -> None:
    config = parse_with_budget("systems:\n  a: {connector: budget}\n", folder)
    assert cast(BudgetSettings, config.systems["a"].settings).rate_limit_storage == "memory://"


def test_a_rate_limit_storage_limits_cannot_use_is_named(folder: Path) -> None:
    message = message_of("rate_limit_storage: async+redis://h:6379\n" + TWO_MEMORY, folder)
    assert message.startswith("crmhub.yaml: rate_limit_storage: must be a rate-limit storage URI")
    assert "async+redis://" in message
