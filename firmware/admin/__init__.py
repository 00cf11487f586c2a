"""The phone's web page for the person who installs it (`[admin] listen`)."""
