from services.insurance.app import main

main()
