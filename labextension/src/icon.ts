import { LabIcon } from '@jupyterlab/ui-components';

/** A gauge over a box: deploy and monitor. Coloured by the theme's icon classes. */
const SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <path class="jp-icon3" fill="#616161" d="M12 3a9 9 0 0 0-9 9h2a7 7 0 0 1 14 0h2a9 9 0 0 0-9-9z"/>
  <path class="jp-icon-brand0" fill="#1976d2" d="M11 12.3 15.6 7.7l1 1-4.6 4.6a1.5 1.5 0 1 1-1-1z"/>
  <path class="jp-icon3" fill="#616161" d="M3 15h18v6H3zm2 2v2h14v-2z"/>
</svg>`;

export const mlopsIcon = new LabIcon({ name: 'mlops-widgets:mlops', svgstr: SVG });
