"""The command-line interface: parsing arguments and formatting results. No decision logic lives here."""
