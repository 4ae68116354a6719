"""The Gradio app over the charrnn engine: settings, forms and actions (no gradio), renderers (no gradio),
and the tabs that build and wire components (gradio). ``webui.demo.create_demo(settings)`` assembles it."""
