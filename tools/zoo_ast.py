"""The generic reading of robustbench's source that tools/zoo_table.py builds on: parsing
its files, naming a call's arguments by the callee's signature, following imports and a
factory's if-chain. Nothing here knows a family."""
import ast
import os
import sys

from zoo_configs import literal


def wheel_dir():
    venv = os.environ.get("RIFT_VENV") or sys.prefix
    return os.path.join(venv, "wheels", "robustbench")


def parse(path):
    with open(path) as f:
        return ast.parse(f.read(), filename=path)


def module_constants(tree):
    """Module-level `NAME = literal` assignments."""
    out = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                out[stmt.targets[0].id] = literal(stmt.value, out)
            except (ValueError, TypeError, SyntaxError):
                pass
    return out


def signature(func):
    """Parameter names (without self) and their default expressions."""
    args = [a.arg for a in func.args.args if a.arg != "self"]
    defaults = dict(zip(args[len(args) - len(func.args.defaults):], func.args.defaults))
    return args, defaults


class Call:
    """A constructor call with every argument named (positional ones by the callee's
    signature when rift knows it) and the callee's defaults filled in."""

    def __init__(self, callee, args, kwargs):
        self.callee, self.args, self.kwargs = callee, args, kwargs

    def text(self):
        parts = [ast.unparse(a) for a in self.args] + [f"{k}={ast.unparse(v)}" for k, v in self.kwargs.items()]
        return f"{self.callee}({', '.join(parts)})"


def callee_name(func):
    return ast.unparse(func)


def bind(call, signatures, substitute):
    """Names the arguments of `call` by the callee's signature (if known), substituting
    names bound by an enclosing `__init__` (`depth=depth`)."""
    name = callee_name(call.func)
    args = [substitute(a) for a in call.args]
    kwargs = {k.arg: substitute(k.value) for k in call.keywords}
    sig = signatures.get(name.split(".")[-1])
    if sig is None:
        return Call(name, args, kwargs)
    params, defaults = sig
    named = dict(zip(params, args))
    named.update(kwargs)
    for p, d in defaults.items():
        named.setdefault(p, d)
    return Call(name, [], {p: named[p] for p in params if p in named})


def import_aliases(tree):
    """`from a.b.file import name as alias` of a module: {alias: (file, name)}."""
    aliases = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = (node.module.split(".")[-1], a.name)
    return aliases


def assigned_call(func, env):
    """The call a factory function assigns to `model` in the branch of its if-chain that
    holds for `env` (string parameters compared with `==`); None where none does."""

    def holds(test):
        if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and len(test.ops) == 1 \
                and isinstance(test.ops[0], ast.Eq) and isinstance(test.comparators[0], ast.Constant):
            return env.get(test.left.id) == test.comparators[0].value
        return False

    def walk(stmts):
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                found = walk(stmt.body) if holds(stmt.test) else walk(stmt.orelse)
                if found:
                    return found
            elif isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) \
                    and ast.unparse(stmt.targets[0]) == "model":
                return stmt.value
        return None
    return walk(func.body)


def bind_all(call, func):
    """`call` of `func` with every argument named: positional ones by its signature, then
    its defaults, then keywords it collects in `**kwargs`, in that order."""
    params, defaults = signature(func)
    named = dict(zip(params, call.args))
    keywords = {k.arg: k.value for k in call.keywords}
    out = {p: keywords.pop(p, named.get(p, defaults.get(p))) for p in params}
    out = {p: v for p, v in out.items() if v is not None}
    out.update(keywords)
    return Call(callee_name(call.func), [], out)
