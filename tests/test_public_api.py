"""``ledger.__all__`` and ``stages.__all__`` name exactly the public API (after encode/httpx's
tests/test_exported_members.py): each names what its package actually exports, every name in it
imports, it equals the list written below (so an accidental addition or removal fails here, and a
deliberate one is made here too), and it is closed: every class of ``ledger`` or ``stages`` that a
public signature, field or method names is exported too, and so is every error class."""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from types import ModuleType
from typing import Any

import attrs
import pytest

import ledger
import stages
from ledger import errors

LEDGER_API = [
    "APP_VERSION", "AlpacaSettings", "AssetFailed", "AssetMaterialized", "AssetSkipped", "BackfillFinished",
    "BackfillPlanned", "CheckEvaluated", "ChecksEvaluated", "DuckDBEventStore", "Event", "EventStore", "GapPlan",
    "GapRange", "Ledger", "PlanStep",
    "RunAbandoned", "RunContext", "RunFailed", "RunHeartbeat", "RunStarted", "RunSucceeded", "Settings",
    "StoredEvent", "TradingCalendar", "VerifyReport", "get_duckdb_path", "load_settings", "open", "status",
]
STAGES_API = [
    "BackfillResult", "CheckResult", "DailyResult", "JobResult",
    "SymbolOutcome", "backfill", "backfill_resume", "backfill_status", "default_session", "plan",
    "raise_for_status", "resolve_symbols", "run_daily", "run_job", "universe",
]
ERROR_CLASSES = sorted(n for n in errors.__all__ if isinstance(getattr(errors, n), type))
PACKAGES = {"ledger": (ledger, sorted([*LEDGER_API, *ERROR_CLASSES])), "stages": (stages, sorted(STAGES_API))}
# What the packages' __init__ modules import for themselves, not for users.
HELPERS = {"annotations", "importlib", "Any", "TYPE_CHECKING"}


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_all_is_the_written_api(name: str) -> None:
    package, written = PACKAGES[name]
    assert len(package.__all__) == len(set(package.__all__))
    assert sorted(package.__all__) == written


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_all_names_exactly_what_the_package_exports(name: str) -> None:
    """Every public name the package answers to (loaded lazily or not) is in __all__, and no other."""
    package, _ = PACKAGES[name]
    for public in package.__all__:
        getattr(package, public)  # loads every lazy name
    exported = {n for n, v in vars(package).items()
                if not n.startswith("_") and n not in HELPERS and not isinstance(v, ModuleType)}
    answered = {n for n in dir(package) if not n.startswith("_") and n not in HELPERS
                and not isinstance(getattr(package, n), ModuleType)}
    assert exported == answered == set(package.__all__)


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_every_name_imports_in_a_fresh_interpreter_namespace(name: str) -> None:
    package, _ = PACKAGES[name]
    namespace: dict[str, Any] = {}
    exec(f"from {name} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(package.__all__)
    assert all(namespace[n] is getattr(package, n) and namespace[n] is not None for n in package.__all__)


def test_every_error_class_is_exported_from_ledger() -> None:
    assert set(ERROR_CLASSES) <= set(ledger.__all__)
    assert all(issubclass(getattr(ledger, n), errors.OptionsHelperError) or n == "OptionsHelperError"
               for n in ERROR_CLASSES)


def _classes_in(annotation: Any) -> set[type]:
    found = {annotation} if isinstance(annotation, type) else set()
    for arg in typing.get_args(annotation):
        found |= _classes_in(arg)
    return found


def _signatures() -> list[tuple[str, Any]]:
    """(where, function or class) for every public function, class, method and property."""
    out: list[tuple[str, Any]] = []
    for pname, (package, _) in PACKAGES.items():
        for n in package.__all__:
            obj = getattr(package, n)
            if inspect.isclass(obj):
                out.append((f"{pname}.{n}", obj))
                for m, member in vars(obj).items():
                    if m.startswith("_"):
                        continue
                    f = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                    if inspect.isfunction(f):
                        out.append((f"{pname}.{n}.{m}", f))
            elif inspect.isfunction(obj):
                out.append((f"{pname}.{n}", obj))
    return out


def test_every_class_a_public_signature_names_is_exported() -> None:
    """A user who gets a value from the API (a public function's or method's return value, a field of
    an exported class) can import its type from ``ledger`` or ``stages``: annotations are resolved
    against the two packages' exports only, so a type imported under TYPE_CHECKING from an
    implementation module and not exported fails here. (Argument types are not required: a caller
    passes values it already has.)"""
    public = {getattr(p, n) for p, _ in PACKAGES.values() for n in p.__all__}
    names = {n: getattr(p, n) for p, _ in PACKAGES.values() for n in p.__all__}
    missing: dict[str, str] = {}
    for where, obj in _signatures():
        module = sys.modules[obj.__module__]
        fields = attrs.fields(obj) if inspect.isclass(obj) and attrs.has(obj) else None
        try:
            if fields is not None:
                hints = typing.get_type_hints(obj, globalns={**vars(module), **names})
                hints = {f.name: hints[f.name] for f in fields if not f.name.startswith("_")}
            elif inspect.isclass(obj):
                continue
            else:
                returns = inspect.signature(obj).return_annotation
                if returns is inspect.Signature.empty:
                    continue
                namespace = {**vars(importlib.import_module(obj.__module__)), **names}
                hints = {"return": eval(returns, namespace) if isinstance(returns, str) else returns}
        except NameError as e:
            missing[where] = f"names {e.name!r}, which neither ledger nor stages exports"
            continue
        for annotation in hints.values():
            for cls in _classes_in(annotation):
                if cls.__module__.split(".")[0] in PACKAGES and cls not in public:
                    missing[where] = f"names {cls.__module__}.{cls.__qualname__}, which is not exported"
    assert not missing, missing
