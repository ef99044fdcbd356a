from hyperdas_tl.bench.cli import main

raise SystemExit(main())
