"""Topics: named audiences users subscribe to; notifications can target a topic."""
