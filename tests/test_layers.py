"""The package's layers contract: no module imports from a layer above its own (imports inside functions count too).

Layers, top to bottom. Modules in one layer joined by ' | ' are independent (neither imports the other); joined by
' : ' they may import each other. `python tests/test_layers.py` prints the contract and what it checked (`make test` runs it)."""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    'elt.viewer | elt.course | elt.docs',                   # applications: the viewer, the course, the book
    'elt.experiments.pages',                                # README and the results page
    'elt.experiments.run',                                  # profiles and the papermill runner
    'elt.experiments.train_speed | elt.experiments.claims | elt.experiments.adaptive',
    'elt.experiments.zoo : elt.experiments.reproduce',      # the models: recipes, training, the shipped zoo, the evaluation cache
    'elt.experiments.results | elt.experiments.verdict',    # the results schema; the verdict rule (pure statistics)
    'elt.experiments.bookkeeping',                          # papermill's parameters guard, the results file
    'elt.bench',                                            # kernel-free throughput benchmarks
    'elt.families',                                         # masked, diffusion, flow, video
    'elt.evaluation',                                       # metrics
    'elt.method',                                           # the looped block, ILSD, training, the family protocol, adaptive loops
    'elt.data | elt.exercises',
    'elt.provenance | elt.timing',                          # code hashes, the commit, stale reuse; timing side by side
    'elt.core',                                             # seeding, devices, checkpoints
]


def _layers():
    out = []
    for i, line in enumerate(LAYERS):
        sep = ' : ' if ' : ' in line else ' | '
        out += [(name.strip(), i, sep == ' : ') for name in line.split(sep)]
    return out


def _home(module: str):
    "The (layer name, layer index, siblings may import each other) of `module`: the longest layer name that prefixes it."
    hits = [entry for entry in _layers() if module == entry[0] or module.startswith(entry[0] + '.')]
    return max(hits, key=lambda e: len(e[0])) if hits else None


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix('')
    return '.'.join(rel.parts[:-1] if rel.name == '__init__' else rel.parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    "Every elt module `path` imports (at any depth of the file), with its line."
    me, out = _module_name(path), []
    package = me if path.name == '__init__.py' else me.rsplit('.', 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split('.')[0] == 'elt']
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else: target = node.module or ''
            if target.split('.')[0] == 'elt':
                out.append((target, node.lineno))
    return out


def check() -> tuple[int, int, list[str]]:
    "(modules checked, imports checked, violations)."
    modules = [p for p in sorted((ROOT/'elt').rglob('*.py')) if p.name != '_modidx.py']
    violations, n_imports = [], 0
    for path in modules:
        me = _module_name(path)
        home = _home(me)
        if home is None:
            if path.name != '__init__.py' and me != 'elt':
                violations.append(f"{me}: in no layer — add it to LAYERS in tests/test_layers.py")
            continue
        for target, line in _imports(path):
            there = _home(target)
            if there is None or target == me: continue
            n_imports += 1
            if there[1] < home[1]:
                violations.append(f"{me}:{line} imports {target}, a layer above ({there[0]} over {home[0]})")
            elif there[1] == home[1] and there[0] != home[0] and not home[2]:
                violations.append(f"{me}:{line} imports {target}, an independent module of its own layer")
    return len(modules), n_imports, violations


def test_no_module_imports_from_a_layer_above():
    _, _, violations = check()
    assert not violations, 'layers contract broken:\n' + '\n'.join(violations)


def test_the_contract_can_fail(tmp_path, monkeypatch):
    "A module of a low layer that imports a higher one is caught (the check is not vacuous)."
    fake = tmp_path/'elt'/'core.py'
    fake.parent.mkdir(); fake.write_text('def f():\n    from elt.experiments.run import PROFILES\n')
    monkeypatch.setattr(sys.modules[__name__], 'ROOT', tmp_path)
    _, _, violations = check()
    assert violations == ['elt.core:2 imports elt.experiments.run, a layer above (elt.experiments.run over elt.core)']


if __name__ == '__main__':
    n_modules, n_imports, violations = check()
    print('layers contract (tests/test_layers.py), top to bottom:')
    for i, line in enumerate(LAYERS): print(f'  {i:2d}  {line}')
    print(f'{n_modules} modules, {n_imports} imports between layers checked: '
          + ('kept' if not violations else f'{len(violations)} broken\n' + '\n'.join(violations)))
    sys.exit(1 if violations else 0)
