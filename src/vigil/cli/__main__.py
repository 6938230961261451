from vigil.cli import app

app(prog_name="vigil")
