"""One row of the settings table (settings.py assembles the rows of the settings_* modules)."""


class Setting:
    """One setting: its name, validator, default, command-line flags (with ``metavar``) and help;
    its environment variable follows from the name. ``gunicorn`` says how gunicorn's setting of
    that name is answered: "same" (gunicorn's name, flags and meaning; "same: ..." notes a
    difference), "ignored: why" (taken, with one warning line when set), "refused: what to use
    instead" (only its default is taken), or None for a setting gunicorn does not have."""

    __slots__ = ("name", "validate", "default", "flags", "help", "metavar", "gunicorn")

    def __init__(self, name, validate, default, flags=(), help="", metavar=None, gunicorn="same"):
        self.gunicorn = gunicorn
        self.name = name
        self.validate = validate
        self.default = default
        self.flags = flags
        self.help = help
        self.metavar = metavar

    @property
    def env(self):
        return "FORKWSGI_" + self.name.upper()

    @property
    def is_hook(self):
        return hasattr(self.validate, "arity")
