from pkgrepo.cli import main

main()
