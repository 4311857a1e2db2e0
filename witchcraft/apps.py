from django.apps import AppConfig


class WitchcraftConfig(AppConfig):
    name = "witchcraft"
    verbose_name = "Witchcraft"

    def ready(self) -> None:
        from witchcraft.platform import checks  # noqa: F401 - registers the system checks
