import pytest

from rtdmd_bench.registry import Registry, RegistryError, Spec, import_target


def make():
    reg = Registry("widget")
    reg.add(Spec(name="json_dumps", target="json:dumps", description="encode"))
    reg.add(Spec(name="json_loads", target="json:loads", description="decode"))
    return reg


def test_lazy_get_and_names_sorted():
    reg = make()
    assert reg.names() == ["json_dumps", "json_loads"]
    assert reg.get("json_loads")("[1]") == [1]
    assert "json_dumps" in reg and len(reg) == 2


def test_duplicate_name_raises():
    reg = make()
    with pytest.raises(RegistryError, match="duplicate widget name 'json_dumps'"):
        reg.add(Spec(name="json_dumps", target="json:dumps"))


def test_unknown_name_did_you_mean_and_available():
    reg = make()
    with pytest.raises(RegistryError) as exc:
        reg.spec("json_dump")
    msg = str(exc.value)
    assert "Did you mean 'json_dumps'" in msg
    assert "Available widgets: json_dumps, json_loads" in msg


def test_plugin_paths_accepted_wherever_a_name_is():
    reg = make()
    assert reg.get("os.path:join")("a", "b").endswith("b")
    assert reg.resolve("os.path:join") == "os.path:join"
    with pytest.raises(RegistryError, match="cannot import module 'no_such_mod'"):
        reg.resolve("no_such_mod:X")
    with pytest.raises(RegistryError, match="has no attribute"):
        import_target("json:nope")
    with pytest.raises(RegistryError, match="must look like"):
        import_target("json")


def test_spec_never_imports_target():
    reg = Registry("widget")
    reg.add(Spec(name="ghost", target="module_that_does_not_exist:X"))
    assert reg.spec("ghost").target.startswith("module_that")
    with pytest.raises(RegistryError, match="cannot import"):
        reg.get("ghost")


def test_register_decorator():
    reg = Registry("widget")

    @reg.register(Spec(name="f", target="tests:f"))
    def f():
        return 3

    assert reg.get("f")() == 3
