from services.complaints.app import main

main()
