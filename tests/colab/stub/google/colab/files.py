"""``google.colab.files``: downloading to the browser does nothing here."""


def download(filename: str) -> None:
    print(f"(simulated Colab) would download {filename}")
