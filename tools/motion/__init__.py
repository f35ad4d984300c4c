"""Motion encoder E_m: 11-frame ARKit window -> 25 motion-basis weights (see README.md)."""
