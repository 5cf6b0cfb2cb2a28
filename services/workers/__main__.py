from services.workers.app import main

main()
