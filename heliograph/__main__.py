from heliograph.cli import main

main()
