from dupwatch.cli import main

raise SystemExit(main())
