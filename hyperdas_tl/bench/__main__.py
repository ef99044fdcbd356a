from hyperdas_tl.bench.cli import main
from hyperdas_tl.cli.entry import run_script

raise SystemExit(run_script(main))
