"""The page frame every HTML page of the worker shares (the dashboard, the capacity page)."""

# Each page puts its colour variables (`:root { --ink ... }`) before this and its own rules after.
FRAME_CSS = """
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
  sans-serif; color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:10px 20px;
  display:flex; align-items:baseline; gap:16px; flex-wrap:wrap; }
header h1 { font-size:18px; margin:0; }
header .asof { color:var(--muted); }
main { max-width:1400px; margin:0 auto; padding:12px 20px 40px; }
"""
