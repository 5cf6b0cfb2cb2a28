from services.credit.app import main

main()
