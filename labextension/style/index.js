import './base.css';
import './remote.css';
import './render.css';
import './timetravel.css';
