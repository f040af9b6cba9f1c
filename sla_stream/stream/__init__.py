"""The Faust shell: topics, tables, agents, ticker and codecs around the pure core."""
