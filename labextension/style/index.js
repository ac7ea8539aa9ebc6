import './base.css';
import './render.css';
import './timetravel.css';
