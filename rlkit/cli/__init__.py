"""What the command-line doors share: help, argv checks, one-line errors, closed pipes, sweep callbacks."""
