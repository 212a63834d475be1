"""The procsim window and headless renderer.

The pure modules (`index`, `cursor`, `viewstate`, `timeline`, `history`,
`text`, `speed`, `layout`, `theme`) import no pygame, so a trace can be turned
into a picture's description and tested without a display; `draw`, `frame`,
`app` and `render` are the only modules that touch pygame.
"""
