from timserver.cli import main

main()
