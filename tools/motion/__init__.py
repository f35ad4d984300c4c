"""Motion encoder E_m: 11-frame ARKit window -> 23 motion-basis weights (see README.md)."""
