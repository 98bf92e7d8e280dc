from batchman.daemon.main import main

main()
