"""``hatast models``: the released models ``--model`` accepts, where their files are and whether they check out."""

from __future__ import annotations

from ..release import ReleaseError, known_models, resolve, weights_folders
from ..utils.arguments import OneLineParser
from ..utils.errors import command


@command
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="hatast models", description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", default=None,
                        help="folder of released files not shipped in the wheel (default: $HATAST_WEIGHTS)")
    args = parser.parse_args(argv)
    models = known_models(args.weights_dir)
    print(f"released models (looked for in {', '.join(map(str, weights_folders(args.weights_dir)))}):")
    width = max((len(name) for name in models), default=0)
    for name in sorted(models, key=str.lower):
        entry, _ = models[name]
        try:
            path, _ = resolve(name, args.weights_dir)
            state = f"ready: {path}"
        except ReleaseError as err:  # missing or damaged: say which, go on with the list
            state = "not here" if "not found" in str(err) else f"DAMAGED: {err}"
        print(f"  {name:<{width}}  {entry.title}; {state}")
    return 0
