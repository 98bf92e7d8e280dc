from batchman.cli.commands import main

main()
