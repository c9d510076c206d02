"""An application factory, for `module:factory(args)` specs."""


def create_app(greeting="hi"):
    body = greeting.encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    return app
