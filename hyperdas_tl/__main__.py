from hyperdas_tl.cli import main

raise SystemExit(main())
