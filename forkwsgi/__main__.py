from forkwsgi.cli import main

raise SystemExit(main())
