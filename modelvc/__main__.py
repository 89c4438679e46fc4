from modelvc.cli.main import main

main()
