from services.regulator.app import main

main()
