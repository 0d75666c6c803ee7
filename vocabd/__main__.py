from vocabd.cli import main

main()
